"""Models of the reminders area (imported by storage.models).

The tables themselves (tasks, reminders, attachments, installment_*) are declared in
storage.models; this module adds the indexes the reminder engine's scans need:

- ``ix_reminders_task_id``: cancelling a task's pending reminders (done, snooze, cancel) and
  the ON DELETE CASCADE from tasks.
- ``ix_tasks_status_due``: the escalation scan (open tasks past due) and "my tasks today".
- ``ix_installment_dues_plan_due``: a plan's dues in date order (payments, receivables).
"""

from __future__ import annotations

from sqlalchemy import Index

from storage.models import InstallmentDue, Reminder, Task

Index("ix_reminders_task_id", Reminder.task_id)
Index("ix_tasks_status_due", Task.status, Task.due_at)
Index("ix_installment_dues_plan_due", InstallmentDue.plan_id, InstallmentDue.due_date)

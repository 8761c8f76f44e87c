"""Every model, one module per aggregate; importing this package registers all tables on
`Base.metadata` (Alembic and the tests see one schema)."""

from storage.models.analytics import FunnelFact, StageVisit, StageVisitDay
from storage.models.base import NAMING_CONVENTION, Base, JSONDict
from storage.models.business import BusinessChat, BusinessConnection
from storage.models.clients import ClientInvite, ClientLink, Company, Contact
from storage.models.deals import Activity, Deal, StageHistory
from storage.models.files import StoredFile
from storage.models.imports import ImportJob, ImportStatus
from storage.models.installments import InstallmentDue, InstallmentPlan, Payment
from storage.models.intake import AssignmentCursor, IdempotencyKey
from storage.models.leads import Lead
from storage.models.outbox import Reminder
from storage.models.pipelines import LossReason, Pipeline, QualificationQuestion, Stage
from storage.models.plans import Plan
from storage.models.system import BotMenu, CacheEpoch, JobRun, ProcessedUpdate
from storage.models.tasks import Attachment, Task
from storage.models.team import Absence, AccessAttempt, Employee, Invite

__all__ = [
    "Base",
    "NAMING_CONVENTION",
    "JSONDict",
    "Employee",
    "Absence",
    "Invite",
    "AccessAttempt",
    "Company",
    "Contact",
    "ClientLink",
    "ClientInvite",
    "Pipeline",
    "Stage",
    "LossReason",
    "QualificationQuestion",
    "Lead",
    "Deal",
    "StageHistory",
    "Activity",
    "StoredFile",
    "Task",
    "Attachment",
    "BusinessConnection",
    "BusinessChat",
    "InstallmentPlan",
    "InstallmentDue",
    "Payment",
    "Reminder",
    "ProcessedUpdate",
    "CacheEpoch",
    "JobRun",
    "BotMenu",
    "Plan",
    "FunnelFact",
    "StageVisit",
    "StageVisitDay",
    "ImportStatus",
    "ImportJob",
    "IdempotencyKey",
    "AssignmentCursor",
]

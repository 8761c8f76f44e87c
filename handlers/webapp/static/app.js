/* Voronka Mini App: the pipeline board and the funnel dashboard.
 *
 * Plain JavaScript, no build step. Every call goes to /app/api/ with the Telegram initData
 * (Authorization: tma <initData>); the server checks it and the person's rights. Texts come
 * from the server's catalogs (ru/en), colours from Telegram's theme. */
"use strict";

(function () {
  const tg = (window.Telegram && window.Telegram.WebApp) || null;
  const initData = (tg && tg.initData) || "";
  const API = "api";
  const state = {
    texts: {},
    me: null,
    view: new URLSearchParams(location.search).get("view") === "dashboard" ? "dashboard" : "board",
    board: { pipeline: null, manager: null, data: null },
    dash: { report: "snapshot", pipeline: null, period: "this_month", manager: null },
    dragging: null,
  };

  // --- small helpers ---------------------------------------------------------------------

  function T(key, params) {
    let text = state.texts[key] || key;
    for (const [k, v] of Object.entries(params || {})) text = text.split("{" + k + "}").join(v);
    return text;
  }

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  const $ = (id) => document.getElementById(id);

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message) || String(status));
      this.status = status;
      this.body = body || {};
    }
  }

  async function api(path, options) {
    const opts = Object.assign({ headers: {} }, options || {});
    opts.headers = Object.assign({ Authorization: "tma " + initData }, opts.headers);
    if (opts.json !== undefined) {
      opts.method = opts.method || "POST";
      opts.body = JSON.stringify(opts.json);
      opts.headers["Content-Type"] = "application/json";
    }
    const res = await fetch(API + path, opts);
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    if (res.status === 401 || res.status === 403 && body && body.error === "not_staff") {
      refuse(res.status === 401 ? T("app.unauthorized") : body.message);
      throw new ApiError(res.status, body);
    }
    if (!res.ok) throw new ApiError(res.status, body);
    return body;
  }

  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, v);
    const s = q.toString();
    return s ? "?" + s : "";
  }

  function toast(text, kind) {
    const el = $("toast");
    el.textContent = text;
    el.className = kind || "";
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { el.hidden = true; }, 4000);
  }

  function haptic(kind) {
    try { tg && tg.HapticFeedback && tg.HapticFeedback.notificationOccurred(kind); } catch (e) { /* old clients */ }
  }

  function refuse(text) {
    // No data for anyone the server did not accept: wipe the screen, say what to do.
    $("filters").replaceChildren();
    $("top").hidden = true;
    closeSheet();
    $("main").replaceChildren(h("p", { class: "note error", id: "refused" }, text));
  }

  // --- Telegram theme --------------------------------------------------------------------

  const THEME = {
    bg_color: "--bg", text_color: "--text", hint_color: "--hint", link_color: "--link",
    button_color: "--button", button_text_color: "--button-text",
    secondary_bg_color: "--bg2", section_bg_color: "--section", destructive_text_color: "--danger",
  };

  function applyTheme() {
    const params = (tg && tg.themeParams) || {};
    const root = document.documentElement.style;
    for (const [k, v] of Object.entries(THEME)) if (params[k]) root.setProperty(v, params[k]);
    if (tg && tg.colorScheme) document.documentElement.dataset.scheme = tg.colorScheme;
  }

  // --- select boxes ------------------------------------------------------------------------

  function select(id, label, options, value, onchange) {
    const sel = h("select", { id, "aria-label": label, onchange: (e) => onchange(e.target.value) },
      options.map((o) => h("option", { value: o.value, selected: String(o.value) === String(value) }, o.label)));
    return h("label", { class: "pick" }, h("span", {}, label), sel);
  }

  function scopeOptions(data) {
    const opts = [{ value: "all", label: T("app.scope.all") }, { value: "mine", label: T("app.scope.mine") }];
    for (const m of data.managers) if (m.id !== data.me) opts.push({ value: String(m.id), label: m.name });
    return opts;
  }

  function scopeValue(manager, me) {
    if (manager === null || manager === undefined) return "all";
    return manager === me ? "mine" : String(manager);
  }

  function scopeManager(value) {
    if (value === "all") return null;
    if (value === "mine") return state.me.id;
    return Number(value);
  }

  // --- board -----------------------------------------------------------------------------

  async function loadBoard() {
    const b = state.board;
    const data = await api("/board" + query({ pipeline: b.pipeline, manager: b.manager }));
    b.data = data;
    b.pipeline = data.pipeline.id;
    drawBoard();
  }

  function drawBoard() {
    const data = state.board.data;
    const filters = [
      select("pipeline", T("app.pipeline"), data.pipelines.map((p) => ({ value: p.id, label: p.name })),
        data.pipeline.id, (v) => { state.board.pipeline = Number(v); loadBoard().catch(failed); }),
    ];
    if (data.sees_all) {
      filters.push(select("scope", T("app.whose"), scopeOptions(data), scopeValue(data.manager_id, data.me),
        (v) => { state.board.manager = scopeManager(v); loadBoard().catch(failed); }));
    } else {
      filters.push(h("span", { class: "scope-note" }, T("app.scope.mine")));
    }
    $("filters").replaceChildren(...filters);
    const columns = data.columns.map(drawColumn);
    const targets = h("div", { class: "targets", id: "targets" },
      data.targets.map((s) => h("div", { class: "target " + s.kind, dataset: { stage: s.id } }, s.name)));
    for (const t of targets.children) dropZone(t, data.targets.find((s) => String(s.id) === t.dataset.stage));
    $("main").replaceChildren(h("div", { class: "board", id: "board" }, columns), targets);
  }

  function drawColumn(col) {
    const list = h("div", { class: "cards" }, col.cards.map((c) => drawCard(c, col)));
    if (!col.cards.length) list.append(h("p", { class: "note" }, T("app.empty")));
    const more = col.more ? h("button", { type: "button", class: "more", onclick: (e) => loadMore(col, list, e.target) }, T("app.more")) : null;
    const el = h("section", { class: "column" + (col.stage.kind === "frozen" ? " frozen" : ""), dataset: { stage: col.stage.id } },
      h("header", {},
        h("div", { class: "stage-name" }, col.stage.name),
        h("div", { class: "stage-sum" }, h("b", { class: "count" }, col.count), " · ", col.amount_text)),
      list, more);
    dropZone(el, col.stage);
    return el;
  }

  async function loadMore(col, list, button) {
    button.disabled = true;
    const b = state.board;
    const shown = list.querySelectorAll(".card").length;
    try {
      const data = await api("/column" + query({ pipeline: b.pipeline, stage: col.stage.id, manager: b.manager, offset: shown }));
      for (const c of data.cards) list.append(drawCard(c, col));
      if (shown + data.cards.length >= col.count) button.remove(); else button.disabled = false;
    } catch (e) { failed(e); button.disabled = false; }
  }

  function drawCard(card, col) {
    const el = h("article", {
      class: "card" + (card.stale ? " stale" : ""), draggable: "true", tabindex: "0",
      dataset: { deal: card.id, version: card.version },
      onclick: () => openDeal(card.id),
      ondragstart: (e) => { state.dragging = { card, from: col.stage }; e.dataTransfer.setData("text/plain", String(card.id)); document.body.classList.add("dragging"); },
      ondragend: () => { state.dragging = null; document.body.classList.remove("dragging"); },
    },
      h("div", { class: "title" }, card.title),
      card.client && card.client !== card.title ? h("div", { class: "client" }, card.client) : null,
      h("div", { class: "meta" },
        card.amount_text ? h("span", { class: "amount" }, card.amount_text) : null,
        h("span", { class: "days" + (card.stale ? " bad" : ""), title: card.stale ? T("app.stale") : "" }, card.days_text)),
      card.next_contact ? h("div", { class: "next" }, "⏰ ", card.next_contact) : null,
      state.board.data && state.board.data.sees_all && card.manager ? h("div", { class: "who" }, card.manager) : null);
    return el;
  }

  function dropZone(el, stage) {
    el.addEventListener("dragover", (e) => { if (state.dragging) { e.preventDefault(); el.classList.add("over"); } });
    el.addEventListener("dragleave", () => el.classList.remove("over"));
    el.addEventListener("drop", (e) => {
      e.preventDefault();
      el.classList.remove("over");
      const drag = state.dragging;
      state.dragging = null;
      document.body.classList.remove("dragging");
      if (drag && drag.from.id !== stage.id) moveCard({ id: drag.card.id, version: drag.card.version }, stage);
    });
  }

  // --- a deal: the sheet, moves, required fields, loss reasons ------------------------------

  function closeSheet() {
    const sheet = $("sheet");
    sheet.hidden = true;
    sheet.replaceChildren();
    if (tg && tg.BackButton) tg.BackButton.hide();
  }

  function showSheet(...children) {
    const sheet = $("sheet");
    sheet.replaceChildren(h("div", { class: "sheet-body" },
      h("button", { type: "button", class: "close", "aria-label": T("app.close"), onclick: closeSheet }, "✕"),
      ...children));
    sheet.hidden = false;
    if (tg && tg.BackButton) tg.BackButton.show();
  }

  async function openDeal(id) {
    let data;
    try { data = await api("/deals/" + id); } catch (e) { failed(e); return; }
    drawDeal(data);
  }

  function row(label, value) {
    return value ? h("div", { class: "row" }, h("span", { class: "label" }, label), h("span", {}, value)) : null;
  }

  function drawDeal(data) {
    const d = data.deal;
    const moves = d.may_move && !d.closed
      ? d.stages.filter((s) => s.id !== d.stage.id).map((s) =>
        h("button", { type: "button", class: "stage-btn " + s.kind, dataset: { stage: s.id }, onclick: () => moveCard(d, s) }, s.name))
      : [];
    showSheet(
      h("h2", {}, d.title),
      h("div", { class: "badge " + d.stage.kind, id: "deal-stage" }, d.stage.name),
      row(T("app.client"), d.client), row(T("app.phone"), d.phone), row(T("app.amount"), d.amount_text),
      row(T("app.need"), d.need), row(T("app.address"), d.address), row(T("app.measurement"), d.measurement),
      row(T("app.next_contact"), d.next_contact), row(T("app.manager"), d.manager), row(T("app.loss_reason"), d.loss_reason),
      moves.length ? h("h3", {}, T("app.move_to")) : null,
      moves.length ? h("div", { class: "stages", id: "move-to" }, moves) : null,
      d.may_edit ? h("h3", {}, T("app.edit")) : null,
      d.may_edit ? h("div", { class: "stages", id: "edit-fields" }, d.edit.map((f) =>
        h("button", { type: "button", class: "stage-btn", dataset: { field: f.field }, onclick: () => editField(d, f) }, f.label))) : null,
      h("h3", {}, T("app.history")),
      data.history.length
        ? h("ol", { class: "history" }, data.history.map((e) => h("li", {},
          h("span", { class: "at" }, e.at), " ", e.from ? e.from + " → " : "", h("b", {}, e.to),
          e.actor ? h("span", { class: "hint" }, " · " + e.actor) : null,
          e.reason ? h("div", { class: "hint" }, e.reason) : null,
          e.comment ? h("div", { class: "hint" }, e.comment) : null)))
        : h("p", { class: "note" }, T("app.no_history")));
  }

  function moveCard(deal, stage, fields) {
    if (stage.kind === "lost" || stage.kind === "frozen") return pickReason(deal, stage);
    return send("/deals/" + deal.id + "/move", { stage_id: stage.id, version: deal.version, fields: fields || {} }, deal, stage, fields);
  }

  function pickReason(deal, stage) {
    const conditional = stage.kind === "frozen";
    const reasons = state.me.reasons.filter((r) => r.conditional === conditional);
    showSheet(
      h("h2", {}, T(conditional ? "app.reason.conditional" : "app.reason.pick")),
      h("div", { class: "stages", id: "reasons" }, reasons.map((r) =>
        h("button", { type: "button", class: "stage-btn", dataset: { reason: r.id }, onclick: () => send("/deals/" + deal.id + "/lose", { reason_id: r.id, version: deal.version }, deal, stage) }, r.name))),
      h("button", { type: "button", class: "secondary", onclick: closeSheet }, T("app.cancel")));
  }

  const INPUTS = { amount: "text", measurement_at: "datetime-local", next_contact_at: "datetime-local", production_at: "datetime-local", delivery_at: "datetime-local", address: "text", need: "text" };

  function askField(deal, stage, field, label, fields) {
    const input = h("input", { id: "field-input", name: field, type: INPUTS[field] || "text", required: true, inputmode: field === "amount" ? "decimal" : null });
    const error = h("p", { class: "note error", id: "field-error", hidden: true });
    const form = h("form", {
      id: "field-form",
      onsubmit: (e) => {
        e.preventDefault();
        if (!input.value.trim()) { error.textContent = T("app.fill_in"); error.hidden = false; return; }
        const next = Object.assign({}, fields || {}, { [field]: input.value.trim() });
        moveCard(deal, stage, next).then((problem) => { if (problem) { error.textContent = problem; error.hidden = false; } });
      },
    },
      h("h2", {}, T("app.fields.title", { stage: stage.name })),
      h("label", { class: "field" }, h("span", {}, label), input),
      error,
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "primary" }, T("app.save")),
        h("button", { type: "button", class: "secondary", onclick: closeSheet }, T("app.cancel"))));
    showSheet(form);
    input.focus();
  }

  // ✏️ one field of the deal, by the chat's own service: the value checked there.
  function editField(deal, f) {
    const input = h("input", { id: "edit-input", name: f.field, type: f.type, required: true, value: f.value == null ? "" : String(f.value), inputmode: f.field === "amount" ? "decimal" : null });
    const error = h("p", { class: "note error", id: "edit-error", hidden: true });
    const form = h("form", {
      id: "edit-form",
      onsubmit: async (e) => {
        e.preventDefault();
        if (!input.value.trim()) { error.textContent = T("app.fill_in"); error.hidden = false; return; }
        try {
          const res = await api("/deals/" + deal.id + "/edit", { json: { field: f.field, value: input.value.trim(), version: deal.version } });
          haptic("success");
          toast(T("app.edited", { field: f.label }), "ok");
          await openDeal(res.deal.id);
          if (state.view === "board") loadBoard().catch(failed);
        } catch (err) {
          if (!(err instanceof ApiError) || err.status === 401) { if (!(err instanceof ApiError)) failed(err); return; }
          haptic("error");
          if (err.status === 422) { error.textContent = err.body.message || T("app.error"); error.hidden = false; return; }
          closeSheet();
          toast(err.body.message || T("app.error"), "error");
        }
      },
    },
      h("h2", {}, T("app.edit.title", { field: f.label })),
      h("label", { class: "field" }, h("span", {}, f.label), input),
      error,
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "primary" }, T("app.edit.save")),
        h("button", { type: "button", class: "secondary", onclick: () => openDeal(deal.id) }, T("app.cancel"))));
    showSheet(form);
    input.focus();
  }

  // Returns a message to show in an open form, or null.
  async function send(path, body, deal, stage, fields) {
    try {
      const res = await api(path, { json: body });
      haptic("success");
      closeSheet();
      toast(T("app.moved", { stage: res.deal.stage.name }), "ok");
      if (state.view === "board") await loadBoard();
      return null;
    } catch (e) {
      if (!(e instanceof ApiError) || e.status === 401) { if (!(e instanceof ApiError)) failed(e); return null; }
      haptic("error");
      const b = e.body;
      if (b.error === "missing" && !(fields && b.field in fields)) {
        askField(deal, stage, b.field, b.label, fields);
        return null;
      }
      if (b.error === "invalid" && fields && b.field in fields) return b.message;
      closeSheet();
      toast(b.message || T("app.error"), "error");
      if (e.status === 409 && state.view === "board") await loadBoard().catch(failed);
      return null;
    }
  }

  // --- dashboard ---------------------------------------------------------------------------

  const REPORTS = ["snapshot", "period", "losses", "managers", "velocity", "plan"];

  async function loadDashboard() {
    const d = state.dash;
    const data = await api("/funnel" + query({ report: d.report, pipeline: d.pipeline, period: d.period, manager: d.manager }));
    d.pipeline = data.pipeline.id;
    drawDashboard(data);
  }

  function drawDashboard(data) {
    const d = state.dash;
    const reload = () => loadDashboard().catch(failed);
    const filters = [
      h("div", { class: "reports", id: "reports" }, REPORTS.map((r) =>
        h("button", { type: "button", class: r === d.report ? "on" : "", dataset: { report: r }, onclick: () => { d.report = r; reload(); } }, T("app.report." + r)))),
      select("pipeline", T("app.pipeline"), data.pipelines.map((p) => ({ value: p.id, label: p.name })), data.pipeline.id,
        (v) => { d.pipeline = Number(v); reload(); }),
    ];
    if (d.report !== "snapshot" && d.report !== "plan") {
      filters.push(select("period", T("app.period"), state.me.periods.map((p) => ({ value: p.id, label: p.name })), d.period,
        (v) => { d.period = v; reload(); }));
    }
    if (data.sees_all && d.report !== "managers") {
      const opts = [{ value: "", label: T("app.scope.all") }].concat(data.managers.map((m) => ({ value: m.id, label: m.name })));
      filters.push(select("manager", T("app.manager"), opts, data.manager_id || "", (v) => { d.manager = v ? Number(v) : null; reload(); }));
    }
    $("filters").replaceChildren(...filters);
    const r = data.data;
    if (data.report === "plan") return drawPlan(data);
    const summary = [];
    if (data.report === "snapshot") summary.push(T("app.sum.total", { n: r.total }), T("app.sum.amount", { amount: r.amount.text }), T("app.sum.weighted", { amount: r.weighted.text }));
    if (data.period_text) summary.push(data.period_text);
    if (data.report === "period") summary.push(T("app.sum.total", { n: r.total }), T("app.sum.won", { n: r.won }), T("app.sum.conversion", { p: r.conversion }));
    if (data.report === "velocity" && r.cycle) summary.push(r.cycle);
    if (data.report === "losses") summary.push(T("app.sum.total", { n: r.total }), T("app.sum.amount", { amount: r.amount.text }));
    $("main").replaceChildren(h("div", { class: "dashboard", id: "dashboard" },
      h("h2", {}, data.title, data.manager_name ? " · " + data.manager_name : ""),
      summary.length ? h("p", { class: "summary" }, summary.join(" · ")) : null,
      r.bars.length ? chart(r.bars, data.report) : h("p", { class: "note" }, T("app.empty")),
      // first response and norms (issue 26): the lines /funnel and the digests show
      data.team && data.team.lines.length
        ? h("div", { class: "team", id: "team" }, data.team.lines.map((line) => h("p", { class: "team-line" }, line)))
        : null));
  }

  // Plans (issue 26): the same rows as /funnel's Plan view and the digest, and for leaders
  // a form that sets a month's plan (POST /plans: the chat's service checks everything).
  function drawPlan(data) {
    const r = data.data;
    const money = (m) => (m ? m.text : "—");
    const rows = r.rows.map((p) => h("tr", { class: p.behind ? "behind" : "", dataset: { employee: p.employee_id === null ? "" : p.employee_id } },
      h("th", {}, p.label),
      h("td", { class: "won" }, p.won + "/" + (p.plan_count === null ? "—" : p.plan_count)),
      h("td", { class: "money" }, money(p.won_amount) + " / " + money(p.plan_amount)),
      h("td", { class: "progress" }, p.progress),
      h("td", { class: "weighted" }, money(p.weighted)),
      h("td", { class: "pace" }, p.pace_count === null && !p.pace_amount ? "—"
        : [p.pace_count ? T("app.plan.sales", { n: p.pace_count }) : null, p.pace_amount ? p.pace_amount.text : null].filter(Boolean).join(" + ") || "✓")));
    const table = h("table", { class: "plan", id: "plan" },
      h("thead", {}, h("tr", {}, ["", "app.plan.sales_col", "app.plan.money_col", "%", "app.plan.forecast_col", "app.plan.pace_col"].map((k) => h("th", {}, k && k !== "%" ? T(k) : k)))),
      h("tbody", {}, rows));
    const summary = T("app.plan.days", { left: r.days.left, total: r.days.total });
    $("main").replaceChildren(h("div", { class: "dashboard", id: "dashboard" },
      h("h2", {}, data.title, data.manager_name ? " · " + data.manager_name : ""),
      h("p", { class: "summary" }, [data.period_text, summary].join(" · ")),
      h("div", { class: "plan-wrap" }, table),
      data.plan_form ? planForm(data.plan_form) : null));
  }

  function planForm(form) {
    const month = select("plan-month", T("app.plan.month"), form.months.map((m) => ({ value: m.id, label: m.name })), form.months[0].id, () => {});
    const who = select("plan-who", T("app.plan.who"), form.people.map((p) => ({ value: p.id === null ? "" : p.id, label: p.name })), "", () => {});
    const sales = h("input", { id: "plan-sales", inputmode: "numeric", placeholder: "5" });
    const amount = h("input", { id: "plan-amount", placeholder: T("app.plan.amount_hint") });
    const save = h("button", { type: "submit", id: "plan-save" }, T("app.plan.save"));
    return h("form", { class: "plan-form", id: "plan-form", onsubmit: async (e) => {
      e.preventDefault();
      save.disabled = true;
      const whoValue = $("plan-who").value;
      try {
        const body = await api("/plans", { json: {
          month: $("plan-month").value,
          employee_id: whoValue ? Number(whoValue) : null,
          sales: sales.value, amount: amount.value } });
        toast(body.saved, "ok");
        haptic("success");
        await loadDashboard();
      } catch (err) {
        if (err instanceof ApiError) toast(err.body.message || String(err.status), "error");
        else throw err;
      } finally { save.disabled = false; }
    } },
      h("h3", {}, T("app.plan.set")), month, who,
      h("label", {}, T("app.plan.sales_label"), sales),
      h("label", {}, T("app.plan.amount_label"), amount), save);
  }

  // A horizontal bar chart in SVG: funnels centred (a funnel's shape), rankings from the left.
  function chart(bars, report) {
    const NS = "http://www.w3.org/2000/svg";
    const W = 340, ROW = 46, BAR = 24;
    const funnel = report === "snapshot" || report === "period";
    const max = Math.max(1, ...bars.map((b) => b.count));
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", `0 0 ${W} ${bars.length * ROW + 4}`);
    svg.setAttribute("class", "chart");
    svg.setAttribute("id", "chart");
    svg.setAttribute("role", "img");
    const el = (tag, attrs, text) => {
      const e = document.createElementNS(NS, tag);
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
      if (text !== undefined) e.textContent = text;
      svg.append(e);
      return e;
    };
    bars.forEach((b, i) => {
      const y = i * ROW + 16;
      const width = b.count > 0 ? Math.max(3, (W - 8) * b.count / max) : 0;
      const x = funnel ? (W - width) / 2 : 0;
      el("rect", { x, y, width, height: BAR, rx: 4, class: "bar" + (funnel ? "" : " rank"), "data-count": b.count });
      el("text", { x: 0, y: y - 4, class: "bar-label" }, b.label);
      const parts = [String(b.count)];
      if (b.amount && b.amount.value) parts.push(b.amount.text);
      if (b.conversion && i > 0 && report === "period") parts.push(b.conversion);
      if (report === "managers") { parts[0] = T("app.sum.total", { n: b.count }); parts.push(T("app.sum.won", { n: b.won }), b.conversion); }
      if (report === "velocity" && b.median) parts.push(b.median);
      el("text", { x: W - 2, y: y - 4, class: "bar-value", "text-anchor": "end" }, parts.join(" · "));
    });
    return svg;
  }

  // --- start ---------------------------------------------------------------------------------

  function failed(e) {
    if (e instanceof ApiError && e.status === 401) return;
    if (e instanceof ApiError && e.status === 403 && e.body.error === "not_staff") return;
    toast((e instanceof ApiError && e.body.message) || T("app.error"), "error");
  }

  function show(view) {
    state.view = view;
    for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("on", b.dataset.view === view);
    $("main").replaceChildren(h("p", { class: "note" }, T("app.loading")));
    (view === "dashboard" ? loadDashboard() : loadBoard()).catch(failed);
  }

  async function start() {
    applyTheme();
    if (tg) {
      tg.ready();
      tg.expand();
      if (tg.onEvent) tg.onEvent("themeChanged", applyTheme);
      if (tg.BackButton && tg.BackButton.onClick) tg.BackButton.onClick(closeSheet);
    }
    const user = tg && tg.initDataUnsafe && tg.initDataUnsafe.user;
    const guess = (user && user.language_code) || navigator.language || "ru";
    try {
      state.texts = (await (await fetch(API + "/texts" + query({ lang: guess }))).json()).texts;
    } catch (e) { state.texts = {}; }
    document.documentElement.lang = guess.slice(0, 2);
    if (!initData) { refuse(T("app.open_in_telegram")); return; }
    try {
      state.me = await api("/me");
    } catch (e) { failed(e); return; }
    state.texts = state.me.texts;
    document.documentElement.lang = state.me.lang;
    $("tab-board").textContent = T("app.tab.board");
    $("tab-dashboard").textContent = T("app.tab.dashboard");
    for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => show(b.dataset.view));
    document.addEventListener("keydown", (e) => { if (e.key === "Escape") closeSheet(); });
    show(state.view);
  }

  window.voronka = { state };  // for a look from the console (and the tests)
  start();
})();

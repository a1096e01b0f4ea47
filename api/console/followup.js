// qrtrace console: contact follow-up for the communes' health stations (issue 15). Phone-sized first: one card per
// contact, status buttons, a date and a note, the history, the phone number (audited), and "tested positive"
// declaring the contact a case (F0) after a confirmation. Uses app.js's globals ($, api, download, say, guard, t,
// state, esc). Registered at the end of this file.
"use strict";

const FU_STATUSES = ["not_reached", "reached", "quarantined", "tested_negative", "tested_positive"];
const fuState = { rows: [], may: {} };

const fuWhen = (iso) => (iso ? new Date(iso).toLocaleString(state.lang === "vi" ? "vi-VN" : "en-GB",
  { timeZone: "Asia/Ho_Chi_Minh", day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit" }) : "");
const fuDay = (iso) => (iso ? new Date(iso).toLocaleDateString(state.lang === "vi" ? "vi-VN" : "en-GB",
  { timeZone: "Asia/Ho_Chi_Minh" }) : "");
const fuStatus = (s) => t(`fu_${s}`);

function fuPurpose() {
  const purpose = $("#fu-purpose").value.trim();
  if (purpose.length < 3) { $("#fu-purpose").focus(); throw new Error(t("purpose_needed")); }
  return purpose;
}

function fuCard(r) {
  const buttons = fuState.may.update && r.status !== "tested_positive"
    ? FU_STATUSES.filter((s) => s !== "not_reached" && s !== r.status).map((s) =>
      `<button type="button" class="fu-set fu-${s}" data-status="${s}" data-id="${esc(r.follow_up_id)}">${esc(fuStatus(s))}</button>`).join("")
    : "";
  const edit = fuState.may.update ? `
      <div class="fu-edit">
        <label><span>${esc(t("fu_date"))}</span> <input type="date" class="fu-date" data-id="${esc(r.follow_up_id)}"></label>
        <label class="fu-note-label"><span>${esc(t("fu_note"))}</span> <input type="text" class="fu-note" maxlength="1000" data-id="${esc(r.follow_up_id)}"></label>
        <button type="button" class="fu-save-note" data-id="${esc(r.follow_up_id)}">${esc(t("fu_add_note"))}</button>
      </div>
      <div class="fu-buttons">${buttons}</div>` : "";
  const dates = [r.quarantine_from ? `${t("fu_quarantine")}: ${fuDay(r.quarantine_from)} – ${fuDay(r.quarantine_until)}` : "",
    r.tested_on ? `${t("fu_tested_on")}: ${fuDay(r.tested_on)}` : ""].filter(Boolean).join(" · ");
  const declared = r.new_case_id
    ? `<p class="fu-declared">${esc(t("fu_case_declared"))}: <b>${esc(r.new_case_id)}</b> — ${esc(fuState.may.trace ? t("fu_trace_here") : t("fu_trace_by_epi"))}</p>`
    : "";
  return `<article class="fu-card fu-status-${esc(r.status)}" data-id="${esc(r.follow_up_id)}">
      <div class="fu-head"><span class="tier ${esc(r.risk)}">${esc(r.tier)} · ${esc(t(r.risk))}</span>
        <span class="state fu-state">${esc(fuStatus(r.status))}</span></div>
      <p class="fu-where"><b>${esc(r.venue_name)}</b><br>${esc(fuWhen(r.exposed_from))} – ${esc(fuWhen(r.exposed_to))}</p>
      <p class="fu-who"><code>${esc(r.person.slice(0, 12))}…</code> · ${esc(t("fu_of_case"))} ${esc(r.case_id)}</p>
      ${dates ? `<p class="fu-dates">${esc(dates)}</p>` : ""}
      ${r.notes ? `<p class="fu-notes">${esc(r.notes)}</p>` : ""}
      ${declared}
      ${fuState.may.call ? `<p class="fu-phone"><button type="button" class="fu-call" data-id="${esc(r.follow_up_id)}">${esc(t("fu_show_phone"))}</button> <span class="fu-number"></span></p>` : ""}
      ${edit}
      <details class="fu-history" data-id="${esc(r.follow_up_id)}"><summary>${esc(t("fu_history"))}</summary><div></div></details>
    </article>`;
}

async function loadFollowUps() {
  const q = new URLSearchParams({ lang: state.lang });
  if ($("#fu-status").value) q.set("status", $("#fu-status").value);
  const data = await api(`/api/follow-ups?${q}`);
  fuState.rows = data.follow_ups;
  fuState.may = { update: data.may_update, call: data.may_call, trace: data.may_trace };
  $("#fu-counts").textContent = FU_STATUSES.map((s) => `${fuStatus(s)}: ${data.counts[s] || 0}`).join(" · ");
  $("#fu-list").innerHTML = fuState.rows.length ? fuState.rows.map(fuCard).join("") : `<p class="empty">${esc(t("fu_none"))}</p>`;
}

function fuDateValue(id) {
  const el = document.querySelector(`.fu-date[data-id="${CSS.escape(id)}"]`);
  return el && el.value ? `${el.value}T08:00:00+07:00` : undefined;
}

async function fuSet(id, status) {
  const date = fuDateValue(id);
  if (status === "tested_positive") {
    if (!window.confirm(t("fu_confirm_positive"))) return;
    const answer = await api(`/api/follow-ups/${encodeURIComponent(id)}/positive`, { method: "POST", json: date ? { tested_on: date } : {} });
    say(`${t("fu_case_declared")}: ${answer.case_id} — ${answer.trace.may_trace ? t("fu_trace_here") : t("fu_trace_by_epi")}`, true);
  } else {
    await api(`/api/follow-ups/${encodeURIComponent(id)}`, { method: "POST", json: date ? { status, date } : { status } });
    say(`${fuStatus(status)} ✓`, true);
  }
  await loadFollowUps();
}

async function fuNote(id) {
  const el = document.querySelector(`.fu-note[data-id="${CSS.escape(id)}"]`);
  const note = (el && el.value || "").trim();
  if (!note) return;
  await api(`/api/follow-ups/${encodeURIComponent(id)}`, { method: "POST", json: { note } });
  await loadFollowUps();
}

async function fuHistory(details) {
  if (!details.open) return;
  const r = await api(`/api/follow-ups/${encodeURIComponent(details.dataset.id)}?lang=${state.lang}`);
  const dated = new Set(["quarantine_from", "quarantine_until", "tested_on"]);
  const label = (f, v) => (f === "status" && v ? fuStatus(v) : dated.has(f) && v ? fuDay(v) : v);
  details.querySelector("div").innerHTML = r.history.length ? `<ul>${r.history.map((h) =>
    `<li>${esc(fuWhen(h.at))} · ${esc(h.by)} · ${esc(h.field)}: ${esc(label(h.field, h.from) || "—")} → ${esc(label(h.field, h.to))}</li>`).join("")}</ul>`
    : `<p class="empty">${esc(t("none"))}</p>`;
}

async function fuCall(id, button) {
  const r = await api(`/api/follow-ups/${encodeURIComponent(id)}/contact?purpose=${encodeURIComponent(fuPurpose())}`);
  const number = r.contact || r.identifier || "";
  button.parentElement.querySelector(".fu-number").innerHTML = number
    ? `<a href="tel:${esc(number)}">${esc(number)}</a>` : esc(t("none"));
}

function fuExport(format, name) {
  const q = new URLSearchParams({ format, lang: state.lang, purpose: fuPurpose() });
  return download(`/api/follow-ups/export?${q}`, name);
}

function fuWire() {
  $("#fu-status").innerHTML = `<option value="">${esc(t("all"))}</option>` +
    FU_STATUSES.map((s) => `<option value="${s}">${esc(fuStatus(s))}</option>`).join("");
}

{  // the page's elements are in the document already: this script is loaded at the end of <body>
  $("#fu-filters").addEventListener("submit", (ev) => { ev.preventDefault(); guard(loadFollowUps)(); });
  $("#fu-xlsx").addEventListener("click", guard(() => fuExport("district-xlsx", "theo-doi-f1-f2.xlsx")));
  $("#fu-sormas").addEventListener("click", guard(() => fuExport("sormas", "sormas-contacts.csv")));
  $("#fu-godata").addEventListener("click", guard(() => fuExport("godata", "godata-contacts.csv")));
  $("#fu-list").addEventListener("click", guard(async (ev) => {
    const b = ev.target.closest("button");
    if (!b) return;
    if (b.classList.contains("fu-set")) await fuSet(b.dataset.id, b.dataset.status);
    if (b.classList.contains("fu-save-note")) await fuNote(b.dataset.id);
    if (b.classList.contains("fu-call")) await fuCall(b.dataset.id, b);
  }));
  $("#fu-list").addEventListener("toggle", (ev) => { if (ev.target.matches("details.fu-history")) guard(fuHistory)(ev.target); }, true);
}

registerPage("followup", {
  permission: "read_follow_up",
  loader: async () => { const keep = $("#fu-status").value; fuWire(); $("#fu-status").value = keep; await loadFollowUps(); },
  labels: {
    vi: {
      nav_followup: "Theo dõi F1/F2", status_filter_label: "Trạng thái", fu_title: "Theo dõi người tiếp xúc", fu_not_reached: "Chưa liên lạc được",
      fu_reached: "Đã liên lạc", fu_quarantined: "Đang cách ly", fu_tested_negative: "Xét nghiệm âm tính",
      fu_tested_positive: "Xét nghiệm dương tính", fu_date: "Ngày", fu_note: "Ghi chú", fu_add_note: "Lưu ghi chú",
      fu_history: "Lịch sử thay đổi", fu_quarantine: "Cách ly", fu_tested_on: "Xét nghiệm ngày", fu_of_case: "tiếp xúc ca",
      fu_show_phone: "Xem số điện thoại", fu_case_declared: "Đã khai báo ca bệnh (F0)",
      fu_trace_here: "truy vết ca này ở trang Truy vết", fu_trace_by_epi: "cán bộ dịch tễ tỉnh sẽ truy vết ca này",
      fu_confirm_positive: "Xác nhận người này xét nghiệm dương tính? Người này sẽ được khai báo là ca bệnh (F0).",
      fu_none: "Không có người tiếp xúc nào cần theo dõi.", fu_export_xlsx: "Bảng huyện (XLSX)",
      fu_export_sormas: "SORMAS (CSV)", fu_export_godata: "Go.Data (CSV)", fu_purpose: "Mục đích (ghi nhật ký)",
    },
    en: {
      nav_followup: "Follow-up", status_filter_label: "Status", fu_title: "Contact follow-up", fu_not_reached: "Not reached", fu_reached: "Reached",
      fu_quarantined: "In quarantine", fu_tested_negative: "Tested negative", fu_tested_positive: "Tested positive",
      fu_date: "Date", fu_note: "Note", fu_add_note: "Save note", fu_history: "History", fu_quarantine: "Quarantine",
      fu_tested_on: "Tested on", fu_of_case: "contact of case", fu_show_phone: "Show phone number",
      fu_case_declared: "Case (F0) declared", fu_trace_here: "trace it from the Trace page",
      fu_trace_by_epi: "the province's epidemiologists will trace it",
      fu_confirm_positive: "Confirm this person tested positive? They will be declared a case (F0).",
      fu_none: "No contact to follow up.", fu_export_xlsx: "District sheet (XLSX)", fu_export_sormas: "SORMAS (CSV)",
      fu_export_godata: "Go.Data (CSV)", fu_purpose: "Purpose (audited)",
    },
  },
});

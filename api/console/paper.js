// Paper logs on the venues page: download a venue's template, upload a filled one, see the refused rows.
// Shown to the roles that may import one (a venue owner for its venues, officers for their area's).
"use strict";

const PAPER_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
Object.assign(T.vi, {
  paper_title: "Sổ ghi tay (người không có điện thoại)",
  paper_hint: "Tải mẫu, ghi mỗi người một dòng (số định danh hoặc số điện thoại, giờ vào, giờ ra), rồi tải lên.",
  paper_date: "Ngày", paper_template: "Tải mẫu sổ (XLSX)", paper_file: "Sổ đã ghi", paper_upload: "Tải lên",
  paper_rows: "Dòng đã ghi", paper_blank: "Dòng trống", paper_accepted: "Dòng nhận", paper_checkins: "Lượt vào/ra",
  paper_refused: "Dòng bị từ chối", paper_row: "Dòng", paper_column: "Cột", paper_reason: "Lý do",
  paper_none_refused: "Không có dòng nào bị từ chối.",
});
Object.assign(T.en, {
  paper_title: "Paper log (people without phones)",
  paper_hint: "Download the template, write one person per row (identifier or phone, time in, time out), then upload it.",
  paper_date: "Date", paper_template: "Download the template (XLSX)", paper_file: "Filled log", paper_upload: "Upload",
  paper_rows: "Rows filled in", paper_blank: "Blank rows", paper_accepted: "Rows accepted", paper_checkins: "Check-ins",
  paper_refused: "Rows refused", paper_row: "Row", paper_column: "Column", paper_reason: "Reason",
  paper_none_refused: "No row was refused.",
});

async function paperShow() {
  const card = $("#paper-card");
  const allowed = state.me && state.me.permissions.includes("import_paper_log");
  card.hidden = !allowed;
  if (!allowed) return;
  if (!$("#paper-date").value) $("#paper-date").value = vnToday();
  const venues = await api("/api/venues");
  const keep = $("#paper-venue").value;
  $("#paper-venue").innerHTML = venues.slice(0, 2000).map((v) =>
    `<option value="${esc(v.venue_id)}">${esc(v.venue_id)} · ${esc(v.name)}</option>`).join("");
  if (keep && venues.some((v) => v.venue_id === keep)) $("#paper-venue").value = keep;
}

async function paperTemplate() {
  const id = $("#paper-venue").value;
  if (!id) return;
  const q = new URLSearchParams({ lang: state.lang });
  if ($("#paper-date").value) q.set("date", $("#paper-date").value);
  await download(`/api/venues/${encodeURIComponent(id)}/paper-log/template.xlsx?${q}`, `paper-log-${id}.xlsx`);
}

async function paperUpload(ev) {
  ev.preventDefault();
  const file = $("#paper-file").files[0];
  const id = $("#paper-venue").value;
  if (!file || !id) return;
  const report = await api(`/api/venues/${encodeURIComponent(id)}/paper-log?lang=${state.lang}`,
    { method: "POST", body: file, headers: { "Content-Type": PAPER_XLSX } });
  const counts = [["paper_rows", report.rows], ["paper_blank", report.blank_rows], ["paper_accepted", report.accepted_rows],
    ["paper_checkins", report.checkins], ["paper_refused", report.refused_rows]];
  const refused = report.refused.length
    ? `<table id="paper-refused"><tr><th class="num">${t("paper_row")}</th><th>${t("paper_column")}</th><th>${t("paper_reason")}</th></tr>
      ${report.refused.map((r) => `<tr><td class="num">${r.row}</td><td>${esc(r.column)} · ${esc(r.header)}</td>
      <td>${esc(r.message)}${r.cell ? ` <small>(${esc(r.cell)})</small>` : ""}</td></tr>`).join("")}</table>`
    : `<p>${t("paper_none_refused")}</p>`;
  $("#paper-report").innerHTML = `<p class="paper-counts">${counts.map(([k, n]) => `${t(k)}: <b>${fmt(n)}</b>`).join(" · ")}</p>${refused}`;
  say(`${t("paper_checkins")}: ${fmt(report.checkins)} · ${t("paper_refused")}: ${fmt(report.refused_rows)}`, true);  // the refused rows are in the table, not an error
}

document.addEventListener("DOMContentLoaded", () => {
  $("#paper-template").addEventListener("click", guard(paperTemplate));
  $("#paper-form").addEventListener("submit", guard(paperUpload));
  // The venues page is app.js's: when it is shown, this card follows (no hook in app.js needed).
  new MutationObserver(() => { if (!$("#page-venues").hidden) guard(paperShow)(); })
    .observe($("#page-venues"), { attributes: true, attributeFilter: ["hidden"] });
});

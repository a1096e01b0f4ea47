// qrtrace console: plain JavaScript over the JSON API, charts drawn as SVG. Vietnamese by default.
"use strict";

const T = {
  vi: {
    tagline: "truy vết tiếp xúc qua mã QR", nav_coverage: "Độ phủ QR", nav_trace: "Truy vết", nav_operations: "Vận hành",
    nav_venues: "Địa điểm", nav_audit: "Nhật ký", sign_in: "Đăng nhập", sign_out: "Đăng xuất",
    sign_in_help: "Dán mã truy cập (API token) do quản trị viên cấp. Bản demo in sẵn đường dẫn đăng nhập khi chạy `qrtrace serve`.",
    coverage_title: "Tiến độ triển khai quét mã QR theo xã và loại hình", commune: "Xã / thị trấn", all_communes: "Tất cả trong phạm vi",
    report_date: "Ngày báo cáo", highlight: "Tô màu theo", last_24h: "24 giờ qua", last_7d: "7 ngày qua", show: "Xem",
    trend_title: "Số địa điểm có quét mỗi ngày", by_commune: "Tỷ lệ địa điểm có quét theo xã",
    matrix_title: "Xã × loại hình: số có quét / số đăng ký", legend_zero: "chưa quét", legend_partial: "một phần",
    legend_full: "tất cả", legend_none: "không có địa điểm", zero_communes: "Xã chưa có lượt quét nào",
    silent_venues: "Địa điểm chưa quét", registered: "Đã đăng ký", active_24h: "Có quét 24 giờ", active_7d: "Có quét 7 ngày",
    scans_24h: "Lượt quét 24 giờ", people_24h: "Số người 24 giờ", none: "Không có", venue: "Địa điểm", category: "Loại hình",
    trace_title: "Truy vết F0 → F1 → F2", run_trace: "Chạy truy vết", case: "Ca bệnh (chọn một hoặc nhiều)", depth: "Số mức",
    grace: "Thời gian chờ (phút)", min_overlap: "Trùng tối thiểu (phút)", until: "Nguồn F2 đến (mặc định: bây giờ)",
    purpose: "Mục đích (ghi nhật ký)", run: "Truy vết", declare_case: "Khai báo ca bệnh (F0)", case_id: "Mã ca",
    person_id: "Định danh đã quét (SĐT / mã QR cá nhân)", window_from: "Lây nhiễm từ", window_to: "đến", declare: "Khai báo",
    call_list_csv: "Danh sách gọi (CSV)", call_list_xlsx: "Danh sách gọi (XLSX)", cohort_table: "Danh sách tiếp xúc",
    hop: "Mức", person: "Người", phone: "Điện thoại", first_exposure: "Tiếp xúc đầu tiên", overlap: "Phút trùng",
    via: "Qua (nguồn lây)", cases: "Ca", tracing: "Đang truy vết", hops_done: "mức", done: "Xong", contacts: "người tiếp xúc",
    graph_note: "Đồ thị: ai bị phơi nhiễm, ở đâu, qua ai (hiển thị tối đa", pseudonyms_only: "Vai trò của bạn chỉ xem bí danh (không tái định danh).",
    risk: "Nguy cơ", close: "Tiếp xúc gần", casual: "Thông thường", rule: "Quy tắc phân loại nguy cơ", sources: "Nguồn F2+",
    sources_all: "Mọi người tiếp xúc", sources_close: "Chỉ tiếp xúc gần",
    ops_title: "Vận hành hệ thống", mode: "Chế độ", store: "Kho dữ liệu", workers: "Bộ xử lý luồng (Faust)",
    not_running: "không chạy", unreachable: "không liên lạc được", running: "đang chạy", up: "hoạt động",
    api_ingest: "Nhận qua API", events_per_s: "sự kiện/giây", stored_per_minute: "Lượt quét được lưu mỗi phút (60 phút qua)",
    dead_by_reason: "Hàng đợi lỗi theo lý do (7 ngày)", store_size: "Dung lượng kho theo bảng", table: "Bảng", rows: "Số dòng",
    bytes: "Dung lượng", consumer_lag: "Độ trễ tiêu thụ (tin)", e2e: "Độ trễ đầu-cuối p50 / p95",
    venues_title: "Địa điểm và mã QR", register_venue: "Đăng ký địa điểm", venue_id: "Mã địa điểm", venue_name: "Tên địa điểm",
    capacity: "Sức chứa", register: "Đăng ký", poster: "Áp phích A4 (PDF)", all: "Tất cả",
    zones: "Khu vực", add_zone: "+ Khu vực", zone_name: "Tên khu vực mới (mỗi khu vực có mã QR riêng)", zone_added: "Đã thêm khu vực",
    audit_title: "Nhật ký truy cập (chỉ đọc)", at: "Thời điểm", actor: "Người thực hiện", action: "Hành động", subject: "Đối tượng",
    detail: "Chi tiết", error: "Lỗi", declared: "Đã khai báo ca", registered_ok: "Đã đăng ký địa điểm", downloaded: "Đã tải",
    status: { 400: "Yêu cầu không hợp lệ.", 401: "Mã truy cập không hợp lệ hoặc đã hết hạn; hãy đăng nhập lại.",
      403: "Vai trò của bạn không được phép làm việc này hoặc ở địa bàn này.", 404: "Không tìm thấy.",
      409: "Đã có, không thể tạo trùng.", 413: "Dữ liệu gửi lên quá lớn.", 422: "Dữ liệu nhập chưa đúng.",
      429: "Quá nhiều lần thử không thành công; hãy chờ một lát rồi thử lại.",
      503: "Máy chủ tạm thời không phục vụ được; hãy thử lại sau.", other: "Máy chủ gặp lỗi." },
    purpose_needed: "Hãy nêu mục đích (ít nhất 3 ký tự): việc xem và xuất danh sách được ghi nhật ký.",
    by_office: "Theo cơ quan quản lý", office: "Cơ quan quản lý", share_7d: "Tỷ lệ có quét 7 ngày",
    loading: "Đang tải…", no_cases: "Chưa có ca bệnh nào được khai báo.", scans: "Lượt quét",
    embedded: "nhúng (một tiến trình)", distributed: "phân tán (Kafka + Faust)",
    embedded_not_running: "Chế độ nhúng: không có bộ xử lý luồng hay Kafka. Lượt quét được xử lý trong lệnh `qrtrace ingest` và cổng nhận lượt quét của máy chủ này (POST /api/checkins). Đặt QRTRACE_METRICS_URLS tới /metrics của các worker để theo dõi hệ thống phân tán.",
    front_title: "Cổng nhận lượt quét", front_kinds: { embedded: "nhúng", kafka: "Kafka" },
    front_202: { embedded: "Trả lời 202 nghĩa là lượt quét đã được lưu vào kho.",
      kafka: "Trả lời 202 nghĩa là Kafka đã xác nhận nhận lô; các worker lưu vào kho ngay sau đó." },
    front_503: "Trả lời 503 (kèm Retry-After): không giữ lại gì, máy quét gửi lại sau (gửi lại an toàn nhờ scan_id).",
    front_requests: "Yêu cầu đã trả lời", front_accepted: "Lượt quét đã nhận", front_dead: "Lượt quét vào hàng đợi lỗi",
    front_answer: "Thời gian trả lời p50 / p99", front_queued: "Lượt quét đang chờ ghi", front_by_status: "Yêu cầu theo mã trả lời",
    front_by_cause: "Trả lời 503 theo nguyên nhân", front_cause: "Nguyên nhân", front_count: "Số lần",
    front_no_requests: "Chưa có máy quét nào gửi yêu cầu từ khi máy chủ khởi động.",
    front_since: "Số đếm từ khi máy chủ khởi động, cộng mọi tiến trình (--workers); thời gian trả lời là cận trên của khoảng đo (bucket) chứa phân vị.",
    front_statuses: { 202: "đã nhận", 400: "QR giả / yêu cầu sai", 401: "mã truy cập sai", 403: "sai vai trò / địa điểm",
      413: "lô quá lớn", 422: "sai định dạng", 429: "thử mã quá nhiều", 500: "lỗi máy chủ", 503: "tạm không nhận" },
    front_causes: { overloaded: "Quá tải: quá nhiều lượt quét đang chờ", kafka: "Kafka vắng mặt hoặc không xác nhận",
      store: "Kho dữ liệu vắng mặt hoặc từ chối ghi", timeout: "Không xác nhận kịp thời hạn", shutting_down: "Máy chủ đang dừng", token_file: "Máy chủ không đọc được tệp mã truy cập",
      other: "Khác" },
    reasons: { unmatched_checkout: "Quét ra không có lượt vào", missing_field: "Thiếu trường", malformed_json: "JSON hỏng",
      bad_event_time: "Thời gian sai", bad_direction: "Chiều vào/ra sai", wrong_type: "Sai kiểu dữ liệu",
      unknown_venue: "Địa điểm chưa đăng ký", unknown_zone: "Khu vực chưa đăng ký", bad_mode: "Cách quét sai", late: "Đến quá muộn", field_too_long: "Trường quá dài",
      not_an_object: "Không phải đối tượng JSON", record_too_large: "Bản ghi quá lớn",
      number_out_of_range: "Số nguyên vượt quá 64 bit", checkout_after_cap: "Quét ra quá thời gian ghé tối đa",
      event_time_in_future: "Thời gian ở tương lai" },
  },
  en: {
    tagline: "QR check-in contact tracing", nav_coverage: "QR coverage", nav_trace: "Trace", nav_operations: "Operations",
    nav_venues: "Venues", nav_audit: "Audit log", sign_in: "Sign in", sign_out: "Sign out",
    sign_in_help: "Paste the API token an administrator issued you. The demo prints sign-in links when `qrtrace serve` starts.",
    coverage_title: "QR deployment by commune and venue category", commune: "Commune", all_communes: "All in your area",
    report_date: "Report date", highlight: "Colour by", last_24h: "Last 24 h", last_7d: "Last 7 days", show: "Show",
    trend_title: "Venues with at least one scan, per day", by_commune: "Share of venues scanning, per commune",
    matrix_title: "Commune × category: active / registered", legend_zero: "zero scans", legend_partial: "some",
    legend_full: "all", legend_none: "no venues", zero_communes: "Communes with zero scans",
    silent_venues: "Venues with zero scans", registered: "Registered", active_24h: "Active 24 h", active_7d: "Active 7 days",
    scans_24h: "Scans 24 h", people_24h: "People 24 h", none: "None", venue: "Venue", category: "Category",
    trace_title: "Trace F0 → F1 → F2", run_trace: "Run a trace", case: "Case (pick one or more)", depth: "Hops",
    grace: "Grace (minutes)", min_overlap: "Min overlap (minutes)", until: "F2 sources until (default: now)",
    purpose: "Purpose (audited)", run: "Trace", declare_case: "Declare a positive case (F0)", case_id: "Case ID",
    person_id: "Identifier checked in with (phone / personal QR)", window_from: "Infectious from", window_to: "to", declare: "Declare",
    call_list_csv: "Call list (CSV)", call_list_xlsx: "Call list (XLSX)", cohort_table: "Contacts",
    hop: "Hop", person: "Person", phone: "Phone", first_exposure: "First exposure", overlap: "Overlap min",
    via: "Via (source)", cases: "Cases", tracing: "Tracing", hops_done: "hops", done: "Done", contacts: "contacts",
    graph_note: "Graph: who was exposed where, via whom (showing at most", pseudonyms_only: "Your role sees pseudonyms only (no re-identification).",
    risk: "Risk", close: "Close", casual: "Casual", rule: "Risk rule set", sources: "F2+ sources",
    sources_all: "All contacts", sources_close: "Close contacts only",
    ops_title: "Operations", mode: "Mode", store: "Store", workers: "Stream workers (Faust)",
    not_running: "not running", unreachable: "unreachable", running: "running", up: "up",
    api_ingest: "Ingest via API", events_per_s: "events/s", stored_per_minute: "Check-ins stored per minute (last 60 min)",
    dead_by_reason: "Dead letters by reason (7 days)", store_size: "Store size per table", table: "Table", rows: "Rows",
    bytes: "Size", consumer_lag: "Consumer lag (messages)", e2e: "End-to-end latency p50 / p95",
    venues_title: "Venues and QR codes", register_venue: "Register a venue", venue_id: "Venue ID", venue_name: "Venue name",
    capacity: "Capacity", register: "Register", poster: "A4 poster (PDF)", all: "All",
    zones: "Zones", add_zone: "+ Zone", zone_name: "New zone's name (each zone has its own QR)", zone_added: "Zone added",
    audit_title: "Audit log (read-only)", at: "Time", actor: "Actor", action: "Action", subject: "Subject",
    detail: "Detail", error: "Error", declared: "Case declared", registered_ok: "Venue registered", downloaded: "Downloaded",
    status: { other: "The server failed." },
    purpose_needed: "State the purpose (at least 3 characters): reading and exporting contacts is audited.",
    by_office: "By overseeing office", office: "Overseeing office", share_7d: "Active share 7 days",
    loading: "Loading…", no_cases: "No case has been declared yet.", scans: "Scans",
    embedded: "embedded (one process)", distributed: "distributed (Kafka + Faust)",
    embedded_not_running: "Embedded mode: no stream workers or Kafka consumers run here. Check-ins are processed inside `qrtrace ingest` and this server's front door (POST /api/checkins). Set QRTRACE_METRICS_URLS to the workers' /metrics to watch a distributed pipeline.",
    front_title: "Front door (scanners)", front_kinds: { embedded: "embedded", kafka: "Kafka" },
    front_202: { embedded: "A 202 answer means the check-ins are stored.",
      kafka: "A 202 answer means Kafka acknowledged the batch; the workers store it right after." },
    front_503: "A 503 answer (with Retry-After): nothing was kept; the scanner sends it again (safe: scan_id makes resends idempotent).",
    front_requests: "Requests answered", front_accepted: "Scans accepted", front_dead: "Scans dead-lettered",
    front_answer: "Answer time p50 / p99", front_queued: "Check-ins queued", front_by_status: "Requests by answer",
    front_by_cause: "503 answers by cause", front_cause: "Cause", front_count: "Count",
    front_no_requests: "No scanner has sent a request since the server started.",
    front_since: "Counts since the server started, summed over its processes (--workers); answer times are the upper bound of the histogram bucket holding the percentile.",
    front_statuses: { 202: "kept", 400: "forged QR / bad request", 401: "bad token", 403: "wrong role / venue", 413: "batch too large",
      422: "malformed", 429: "too many token tries", 500: "server fault", 503: "unavailable" },
    front_causes: { overloaded: "Overloaded: too many check-ins waiting", kafka: "Kafka away or not acknowledging",
      store: "Store away or refusing the write", timeout: "Not confirmed in time", shutting_down: "Server shutting down", token_file: "Server cannot read its token file",
      other: "Other" },
    reasons: { unmatched_checkout: "Check-out without check-in", missing_field: "Missing field", malformed_json: "Malformed JSON",
      bad_event_time: "Bad event time", bad_direction: "Bad direction", wrong_type: "Wrong type", unknown_venue: "Unknown venue", unknown_zone: "Unknown zone",
      bad_mode: "Bad scan mode", late: "Too late", field_too_long: "Field too long", not_an_object: "Not a JSON object",
      record_too_large: "Record too large", number_out_of_range: "Whole number beyond 64 bits",
      checkout_after_cap: "Check-out past the longest visit", event_time_in_future: "Event time in the future" },
  },
};

const state = { lang: localStorage.getItem("qrtrace.lang") || "vi", token: sessionStorage.getItem("qrtrace.token"),
  me: null, communes: [], categories: [], lastTrace: null };
const $ = (sel) => document.querySelector(sel);
const t = (key) => (T[state.lang] && T[state.lang][key]) || T.vi[key] || key;
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const fmt = (n) => (n ?? 0).toLocaleString(state.lang === "vi" ? "vi-VN" : "en-US");
const vnToday = () => new Date(Date.now() + 7 * 3600e3).toISOString().slice(0, 10);  // the display zone is +07:00
const pct = (x) => `${Math.round((x || 0) * 100)}%`;

// -- API -------------------------------------------------------------------------------------------------
async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.token}`, ...(options.headers || {}) };
  if (options.json !== undefined) { headers["Content-Type"] = "application/json"; options.body = JSON.stringify(options.json); }
  const resp = await fetch(path, { ...options, headers });
  if (resp.status === 401) { signOut(); }
  if (!resp.ok) {
    let detail = "";
    try { detail = (await resp.json()).error || ""; } catch (_) { /* not JSON */ }
    const lead = T[state.lang].status[resp.status] || T[state.lang].status.other;
    throw new Error(state.lang === "en" && detail ? detail : `${lead}${detail ? ` (${detail})` : ""}`);
  }
  return options.raw ? resp : resp.json();
}

async function download(path, filename) {
  const resp = await api(path, { raw: true });
  const blob = await resp.blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  say(`${t("downloaded")}: ${filename}`, true);
}

function say(text, ok = false) {
  const box = $("#message");
  box.textContent = ok ? text : `${t("error")}: ${text}`;
  box.className = ok ? "ok" : "";
  box.hidden = false;
  clearTimeout(say.timer);
  say.timer = setTimeout(() => { box.hidden = true; }, ok ? 4000 : 12000);
}

const guard = (fn) => async (...args) => { try { await fn(...args); } catch (e) { say(e.message); } };

// -- shell -----------------------------------------------------------------------------------------------
function applyLabels() {
  document.documentElement.lang = state.lang;
  document.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
  $("#lang").textContent = state.lang === "vi" ? "English" : "Tiếng Việt";
}

const PAGES = { coverage: "read_coverage", trace: "run_trace", operations: "read_operations", venues: "list_venues", audit: "read_audit" };

function allowedPages() {
  const perms = new Set(state.me ? state.me.permissions : []);
  return Object.keys(PAGES).filter((p) => perms.has(PAGES[p]));
}

async function route() {
  document.querySelectorAll(".page").forEach((el) => { el.hidden = true; });
  if (!state.token || !state.me) { $("#page-signin").hidden = false; $("#nav").hidden = true; return; }
  $("#nav").hidden = false;
  const pages = allowedPages();
  document.querySelectorAll("#nav a").forEach((a) => { a.hidden = !pages.includes(a.dataset.page); });
  let page = location.hash.replace("#", "") || pages[0];
  if (!pages.includes(page)) page = pages[0];
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === page));
  if (!page) { say(`${state.me.role}: ${state.me.permissions.join(", ")}`, true); return; }
  $(`#page-${page}`).hidden = false;
  await guard(LOADERS[page])();
}

async function signIn(token) {
  state.token = token;
  sessionStorage.setItem("qrtrace.token", token);
  try {
    state.me = await api("/api/me");
  } catch (e) { state.me = null; say(e.message); return route(); }
  $("#who").textContent = `${state.me.name} · ${state.me.role}`;
  [state.communes, state.categories] = await Promise.all([api("/api/communes"), api("/api/categories")]);
  fillSelects();
  await route();
}

function signOut() {
  sessionStorage.removeItem("qrtrace.token");
  state.token = null; state.me = null;
  $("#who").textContent = "";
  route();
}

function catName(code) {
  const c = state.categories.find((x) => x.code === code);
  return c ? (state.lang === "en" ? c.name_en : c.name_vi) : code;
}

function fillSelects() {
  const communeOptions = (withAll) => (withAll ? `<option value="">${esc(t("all_communes"))}</option>` : "") +
    state.communes.map((c) => `<option value="${esc(c.commune_code)}">${esc(c.name_vi)}</option>`).join("");
  const catOptions = (withAll) => (withAll ? `<option value="">${esc(t("all"))}</option>` : "") +
    state.categories.map((c) => `<option value="${esc(c.code)}">${esc(catName(c.code))}</option>`).join("");
  $("#cov-commune").innerHTML = communeOptions(true);
  $("#venues-commune").innerHTML = communeOptions(true);
  $("#venue-commune").innerHTML = communeOptions(false);
  $("#venues-category").innerHTML = catOptions(true);
  $("#venue-category").innerHTML = catOptions(false);
}

// -- charts (SVG) ----------------------------------------------------------------------------------------
function lineChart(points, valueKey, labelKey) {
  const w = 560, h = 200, pad = 34;
  if (!points.length) return `<p class="empty">${t("none")}</p>`;
  const max = Math.max(1, ...points.map((p) => p[valueKey]));
  const x = (i) => pad + (i * (w - 2 * pad)) / Math.max(1, points.length - 1);
  const y = (v) => h - pad + 6 - (v * (h - 2 * pad)) / max;
  const path = points.map((p, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(p[valueKey]).toFixed(1)}`).join(" ");
  const dots = points.map((p, i) => `<circle cx="${x(i)}" cy="${y(p[valueKey])}" r="3" fill="#b71c1c"><title>${esc(p[labelKey])}: ${fmt(p[valueKey])}</title></circle>`).join("");
  const labels = points.map((p, i) => (i % Math.ceil(points.length / 7) === 0 || i === points.length - 1)
    ? `<text x="${x(i)}" y="${h - 8}" text-anchor="middle">${esc(String(p[labelKey]).slice(5))}</text>` : "").join("");
  return `<svg viewBox="0 0 ${w} ${h}" width="100%" role="img">
    <line x1="${pad}" y1="${h - pad + 6}" x2="${w - pad}" y2="${h - pad + 6}" stroke="#ccc"/>
    <text x="4" y="${y(max) + 4}">${fmt(max)}</text><text x="4" y="${h - pad + 10}">0</text>
    <path d="${path}" fill="none" stroke="#b71c1c" stroke-width="2"/>${dots}${labels}</svg>`;
}

function columnChart(points, valueKey, labelKey) {
  const w = 560, h = 200, pad = 34, n = points.length;
  const max = Math.max(1, ...points.map((p) => p[valueKey]));
  const bw = (w - 2 * pad) / n;
  const cols = points.map((p, i) => {
    const bh = ((h - 2 * pad) * p[valueKey]) / max;
    return `<rect x="${pad + i * bw + 1}" y="${h - pad + 6 - bh}" width="${Math.max(1, bw - 2)}" height="${bh}" fill="#b71c1c"><title>${esc(p[labelKey])}: ${fmt(p[valueKey])}</title></rect>`;
  }).join("");
  const labels = points.map((p, i) => (i % 10 === 0 || i === n - 1 ? `<text x="${pad + i * bw}" y="${h - 8}">${esc(p[labelKey])}</text>` : "")).join("");
  return `<svg viewBox="0 0 ${w} ${h}" width="100%" role="img"><line x1="${pad}" y1="${h - pad + 6}" x2="${w - pad}" y2="${h - pad + 6}" stroke="#ccc"/>
    <text x="2" y="${pad}">${fmt(max)}</text><text x="2" y="${h - pad + 10}">0</text>${cols}${labels}</svg>`;
}

function barChart(rows, { label, value, max, text, colour }) {
  const rowH = 20, w = 560, left = 170;
  const top = Math.max(1, max ?? Math.max(...rows.map(value), 1));
  const bars = rows.map((r, i) => {
    const v = value(r), bw = ((w - left - 110) * v) / top;
    return `<text x="0" y="${i * rowH + 14}">${esc(String(label(r)).slice(0, 26))}</text>
      <rect x="${left}" y="${i * rowH + 3}" width="${Math.max(0, bw)}" height="${rowH - 6}" fill="${colour ? colour(r) : "#b71c1c"}"/>
      <text x="${left + Math.max(0, bw) + 4}" y="${i * rowH + 14}">${esc(text(r))}</text>`;
  }).join("");
  return `<svg viewBox="0 0 ${w} ${rows.length * rowH + 4}" width="100%" role="img">${bars}</svg>`;
}

// -- coverage --------------------------------------------------------------------------------------------
// The deployment census (the report's denominator): labels kept together here.
Object.assign(T.vi, {
  venues_registered_all: "địa điểm đã đăng ký (có hoặc chưa liên kết)", required: "Phải triển khai", census_matrix_title: "Xã × loại hình: phải triển khai / đã đăng ký / có quét",
  census_legend: "Ô: phải triển khai / đã đăng ký / có quét; xã chưa có danh sách cơ sở: có quét / đã đăng ký",
  no_census: "chưa có danh sách cơ sở", no_census_note: "Xã chưa có danh sách cơ sở (số liệu chỉ tính địa điểm đã đăng ký)",
  unregistered_title: "Cơ sở chưa đăng ký (cần đến tận nơi)", establishment: "Cơ sở", address: "Địa chỉ",
  census_upload_title: "Nhập danh sách cơ sở phải triển khai (CSV / XLSX)",
  census_upload_help: "Cột: Mã cơ sở, Tên cơ sở, Loại hình, Mã xã, Địa chỉ, Mã địa điểm (không bắt buộc). Chỉ nhập được các xã trong phạm vi của bạn.",
  census_upload: "Tải lên", census_imported: "Đã nhập", census_refused: "Dòng bị từ chối", census_row: "Dòng", census_column: "Cột",
  census_reason: "Lý do", census_no_file: "Chọn tệp CSV hoặc XLSX.",
});
Object.assign(T.en, {
  venues_registered_all: "registered venues (linked or not)", required: "Required", census_matrix_title: "Commune × category: required / registered / scanning",
  census_legend: "Cell: required / registered / scanning; communes without a census: scanning / registered",
  no_census: "no census", no_census_note: "Communes without a census (figures count registered venues only)",
  unregistered_title: "Establishments not registered (door-to-door visits)", establishment: "Establishment", address: "Address",
  census_upload_title: "Import the deployment census (CSV / XLSX)",
  census_upload_help: "Columns: establishment_id, name, category, commune_code, address, venue_id (optional). Only communes of your area are imported.",
  census_upload: "Upload", census_imported: "Imported", census_refused: "Refused rows", census_row: "Row", census_column: "Column",
  census_reason: "Reason", census_no_file: "Choose a CSV or XLSX file.",
});

function censusCell(c, activeKey, row) {
  // required / registered / scanning where the commune has a census; scanning / registered (today's) elsewhere
  const a = c ? c[activeKey] : 0, reg = c ? c.registered : 0, req = c ? c.required : 0;
  if (!c || (!reg && !req)) return `<td><span class="cell none">–</span></td>`;
  const title = `${esc(row.commune_name)} · ${esc(catName(c.category))}`;
  if (!row.census) {
    const cls = a === 0 ? "zero" : a < reg ? "partial" : "full";
    return `<td><span class="cell ${cls}" title="${title}">${a}/${reg}</span></td>`;
  }
  // "registered" here is the census establishments linked to a registered venue, so it never exceeds required;
  // every registered venue of the cell (linked or not) is in the tooltip.
  const linked = c.required_registered;
  const cls = a === 0 ? "zero" : (linked < req || a < reg) ? "partial" : "full";
  return `<td><span class="cell ${cls} census" title="${title}: ${esc(t("required"))} ${req}, ${esc(t("registered"))} ${linked}, ${esc(t(activeKey))} ${a}; ${esc(t("venues_registered_all"))} ${reg}">${req}/${linked}/${a}</span></td>`;
}

function renderCensus(cov) {
  const without = cov.communes.filter((c) => !c.census);
  $("#cov-census-note").hidden = !without.length;
  $("#cov-census-note").textContent = without.length ? `${t("no_census_note")}: ${without.map((c) => c.commune_name).join(", ")}` : "";
  const rows = cov.unregistered.slice(0, 300);
  $("#cov-unregistered").innerHTML = rows.length ? `<table><tr><th>${t("establishment")}</th><th>${t("address")}</th><th>${t("category")}</th><th>${t("commune")}</th></tr>
    ${rows.map((e) => `<tr class="unregistered-row"><td>${esc(e.name)} <small>${esc(e.establishment_id)}</small></td><td>${esc(e.address)}</td><td>${esc(catName(e.category))}</td><td>${esc(e.commune_name)}</td></tr>`).join("")}</table>
    ${cov.unregistered.length > rows.length ? `<p class="empty">… ${fmt(cov.unregistered.length - rows.length)}</p>` : ""}`
    : `<p class="empty">${t("none")}</p>`;
  $("#census-form").hidden = !(state.me && state.me.permissions.includes("import_census"));
  const title = document.querySelector('#page-coverage [data-t="matrix_title"], #page-coverage [data-t="census_matrix_title"]');
  title.dataset.t = cov.communes.some((c) => c.census) ? "census_matrix_title" : "matrix_title";
  title.textContent = t(title.dataset.t);
}

async function uploadCensus(ev) {
  ev.preventDefault();
  const file = $("#census-file").files[0];
  if (!file) { say(t("census_no_file")); return; }
  const xlsx = /\.xlsx$/i.test(file.name);
  const type = xlsx ? "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" : "text/csv";
  const got = await api(`/api/census?filename=${encodeURIComponent(file.name)}`, { method: "POST", body: await file.arrayBuffer(), headers: { "Content-Type": type } });
  $("#census-result").innerHTML = `<p class="census-imported"><b>${t("census_imported")}: ${fmt(got.accepted)}</b> · ${t("census_refused")}: ${fmt(got.refused.length)}</p>
    ${got.refused.length ? `<table class="census-refused"><tr><th>${t("census_row")}</th><th>${t("census_column")}</th><th>${t("census_reason")}</th></tr>
    ${got.refused.map((r) => `<tr><td class="num">${r.row}</td><td>${esc(r.column)}</td><td>${esc(r.reason)}</td></tr>`).join("")}</table>` : ""}`;
  say(`${t("census_imported")}: ${fmt(got.accepted)}`, true);
  await loadCoverage();
}

function asOfParam() {
  const day = $("#cov-date").value;
  if (!day) return "";
  if (day >= vnToday()) return "";  // today: up to now
  return `${day}T23:59:59.999999+07:00`;  // the end of the chosen local day
}

function coverageQuery() {
  const q = new URLSearchParams({ lang: state.lang });
  if ($("#cov-commune").value) q.set("commune", $("#cov-commune").value);
  const asOf = asOfParam();
  if (asOf) q.set("as_of", asOf);
  return q;
}

const latest = {};  // a newer request for the same panel wins, whatever order the answers arrive in
const isStale = (panel, n) => latest[panel] !== n;

async function loadCoverage() {
  const q = coverageQuery();
  const n = (latest.coverage = (latest.coverage || 0) + 1);
  const shown = { date: $("#cov-date").value, commune: $("#cov-commune").value };
  const [cov, trend] = await Promise.all([api(`/api/reports/coverage?${q}`), api(`/api/reports/trend?${q}&days=14`)]);
  if (isStale("coverage", n)) return;
  Object.assign($("#page-coverage").dataset, { shownDate: shown.date, shownCommune: shown.commune });
  const period = $("#cov-period").value;
  const activeKey = period === "7d" ? "active_7d" : "active_24h";
  const sum = (k) => cov.communes.reduce((a, c) => a + c[k], 0);
  const census = cov.communes.filter((c) => c.census);
  $("#cov-kpis").innerHTML = [...(census.length ? [["required", census.reduce((a, c) => a + c.required, 0)]] : []),
    ["registered", sum("registered")], ["active_24h", sum("active_24h")],
    ["active_7d", sum("active_7d")], ["scans_24h", sum("scans_24h")], ["zero_communes", cov.zero_scan_communes.length]]
    .map(([k, v]) => `<div class="kpi" data-kpi="${k}"><b>${fmt(v)}</b><span>${esc(t(k))}</span></div>`).join("");
  $("#cov-trend").innerHTML = lineChart(trend, "active_venues", "date");
  $("#cov-bars").innerHTML = barChart(cov.communes, {
    label: (c) => c.commune_name, max: 1,
    value: (c) => (c.registered ? c[activeKey] / c.registered : 0),
    text: (c) => `${fmt(c[activeKey])}/${fmt(c.registered)} (${pct(c.registered ? c[activeKey] / c.registered : 0)})`,
    colour: (c) => (c[activeKey] === 0 ? "#c62828" : c[activeKey] < c.registered ? "#f9a825" : "#2e7d32"),
  });
  const cats = state.categories.map((c) => c.code).filter((code) => cov.cells.some((x) => x.category === code && (x.registered || x.required)));
  const byKey = new Map(cov.cells.map((c) => [`${c.commune_code}|${c.category}`, c]));
  const head = `<tr><th>${esc(t("commune"))}</th>${cats.map((c) => `<th class="cat">${esc(catName(c))}</th>`).join("")}
    <th class="num">${esc(t(activeKey))}</th><th class="num">${esc(t("scans_24h"))}</th></tr>`;
  const body = cov.communes.map((row) => {
    const cells = cats.map((cat) => censusCell(byKey.get(`${row.commune_code}|${cat}`), activeKey, row)).join("");
    const zero = row[activeKey] === 0 ? " zero-commune" : "";
    const note = row.census ? "" : ` <small class="no-census">(${esc(t("no_census"))})</small>`;
    const total = row.census ? `${fmt(row.required)}/${fmt(row.required_registered)}/${fmt(row[activeKey])}` : `${fmt(row[activeKey])}/${fmt(row.registered)}`;
    return `<tr class="commune-row${zero}${row.census ? " census-row" : ""}" data-commune="${esc(row.commune_code)}"><td>${esc(row.commune_name)}${note}</td>${cells}
      <td class="num">${total}</td><td class="num">${fmt(row.scans_24h)}</td></tr>`;
  }).join("");
  $("#cov-matrix").innerHTML = `<table class="matrix">${head}${body}</table>`;
  $("#cov-offices").innerHTML = `<table><tr><th>${t("office")}</th>${census.length ? `<th class="num">${t("required")}</th>` : ""}<th class="num">${t("registered")}</th>
    <th class="num">${t("active_24h")}</th><th class="num">${t("active_7d")}</th><th class="num">${t("share_7d")}</th>
    <th class="num">${t("scans_24h")}</th></tr>${cov.offices.map((o) => `<tr class="office-row"><td>${esc(o.office_name)}</td>${census.length ? `<td class="num">${fmt(o.required)}</td>` : ""}
    <td class="num">${fmt(o.registered)}</td><td class="num">${fmt(o.active_24h)}</td><td class="num">${fmt(o.active_7d)}</td>
    <td class="num">${pct(o.active_share_7d)}</td><td class="num">${fmt(o.scans_24h)}</td></tr>`).join("")}</table>`;
  $("#cov-zero").innerHTML = cov.zero_scan_communes.length
    ? cov.zero_scan_communes.map((c) => `<li>${esc(c.commune_name)} (${fmt(c.registered)} ${esc(t("registered").toLowerCase())})</li>`).join("")
    : `<li class="empty">${t("none")}</li>`;
  const silent = cov.silent_venues.slice(0, 300);
  $("#cov-silent").innerHTML = silent.length ? `<table><tr><th>${t("venue")}</th><th>${t("category")}</th><th>${t("commune")}</th></tr>
    ${silent.map((v) => `<tr><td>${esc(v.name)} <small>${esc(v.venue_id)}</small></td><td>${esc(catName(v.category))}</td><td>${esc(v.commune_name)}</td></tr>`).join("")}</table>
    ${cov.silent_venues.length > silent.length ? `<p class="empty">… ${fmt(cov.silent_venues.length - silent.length)}</p>` : ""}`
    : `<p class="empty">${t("none")}</p>`;
  renderCensus(cov);
}

// -- trace -----------------------------------------------------------------------------------------------
async function loadTrace() {
  const cases = await api("/api/cases?limit=200");
  $("#trace-case").innerHTML = cases.length
    ? cases.map((c, i) => `<option value="${esc(c.case_id)}"${i === 0 ? " selected" : ""}>${esc(c.case_id)} · ${esc(c.infectious_from.slice(0, 16))} → ${esc(c.infectious_to.slice(0, 16))}</option>`).join("")
    : `<option disabled>${esc(t("no_cases"))}</option>`;
  const perms = new Set(state.me.permissions);
  $("#case-form").hidden = !perms.has("declare_case");
  $("#trace-csv").hidden = $("#trace-xlsx").hidden = !perms.has("export_call_list");
  const rules = await api("/api/rules");
  $("#trace-rule").innerHTML = rules.map((r) => `<option value="${esc(r.name)}" title="${esc(r.description)}"${r.name === "qrtrace-2026" ? " selected" : ""}>${esc(r.name)} v${r.version}</option>`).join("");
}

const localToIso = (value) => (value ? `${value.length === 16 ? `${value}:00` : value}+07:00` : null);

async function runTrace(ev) {
  ev.preventDefault();
  const caseIds = [...$("#trace-case").selectedOptions].map((o) => o.value).filter(Boolean);
  const body = { case_ids: caseIds, depth: Number($("#trace-depth").value), grace_minutes: Number($("#trace-grace").value),
    min_overlap_minutes: Number($("#trace-overlap").value), purpose: $("#trace-purpose").value.trim(),
    rule: $("#trace-rule").value || "qrtrace-2026", sources: $("#trace-sources").value || "all" };
  const until = localToIso($("#trace-until").value);
  if (until) body.until = until;
  $("#trace-run").disabled = true;
  const bar = $("#trace-progress");
  bar.hidden = false;
  try {
    let job = await api("/api/traces", { method: "POST", json: body });
    for (let i = 0; i < 1200 && job.status === "running"; i++) {  // bounded: at most ~10 minutes of polling
      bar.querySelector(".bar").style.width = `${(100 * job.hops_done) / job.depth}%`;
      bar.querySelector(".label").textContent = `${t("tracing")}: ${job.hops_done}/${job.depth} ${t("hops_done")}`;
      await new Promise((r) => setTimeout(r, 500));
      job = await api(`/api/traces/${encodeURIComponent(job.trace_id)}`);
    }
    if (job.status === "failed") throw new Error(job.error);
    bar.querySelector(".bar").style.width = "100%";
    bar.querySelector(".label").textContent = t("done");
    const result = await api(`/api/traces/${encodeURIComponent(job.trace_id)}/result?purpose=${encodeURIComponent(body.purpose)}`);
    state.lastTrace = result;
    showTrace(result);
  } finally {
    $("#trace-run").disabled = false;
  }
}

// Close contacts first within each hop: the call list is worked through from the top.
const byTier = (contacts) => [...contacts].sort((a, b) => a.hop - b.hop || (a.risk === "casual") - (b.risk === "casual"));

function showTrace(result) {
  $("#trace-result").hidden = false;
  const contacts = byTier(result.cohort || result.cases[0].contacts);
  const counts = {}, tiers = { close: 0, casual: 0 };
  contacts.forEach((c) => { counts[c.hop] = (counts[c.hop] || 0) + 1; if (c.risk in tiers) tiers[c.risk] += 1; });
  const rule = result.cases[0].rule;
  $("#trace-summary").textContent = `${result.cases.map((c) => c.case_id).join(", ")} · ${result.trace_id}`;
  $("#trace-counts").innerHTML = Object.keys(counts).sort().map((h) => `F${h}: <b>${fmt(counts[h])}</b>`).join(" &nbsp; ") +
    (rule ? ` &nbsp;·&nbsp; <span class="tier close">${esc(t("close"))}: <b>${fmt(tiers.close)}</b></span>
      <span class="tier casual">${esc(t("casual"))}: <b>${fmt(tiers.casual)}</b></span>
      <small>(${esc(rule.name)} v${rule.version})</small>` : "") +
    (result.cases[0].reidentified ? "" : `<br><small>${esc(t("pseudonyms_only"))}</small>`);
  const rows = contacts.slice(0, 2000).map((c) => {
    const e = c.exposures[0];
    return `<tr class="hop-row" data-hop="${c.hop}" data-risk="${esc(c.risk || "")}"><td>F${c.hop}</td>
      <td>${c.risk ? `<span class="tier ${esc(c.risk)}">${esc(t(c.risk))}</span>` : ""}</td><td>${esc(c.person_id)}</td><td>${esc(c.contact || "")}</td>
      <td>${esc(c.first_exposure.slice(0, 16).replace("T", " "))}</td><td>${esc(e.venue_id)}</td>
      <td class="num">${e.overlap_minutes}</td><td>F${e.source_hop} ${esc(e.source_person_id)}${c.exposures.length > 1 ? ` (+${c.exposures.length - 1})` : ""}</td></tr>`;
  }).join("");
  $("#trace-table").innerHTML = `<table><tr><th>${t("hop")}</th><th>${t("risk")}</th><th>${t("person")}</th><th>${t("phone")}</th><th>${t("first_exposure")}</th>
    <th>${t("venue")}</th><th class="num">${t("overlap")}</th><th>${t("via")}</th></tr>${rows}</table>`;
  $("#trace-graph").innerHTML = cohortGraph(result.cases, contacts);
}

function cohortGraph(cases, contacts) {
  // Columns F0, F1, F2 ...; an edge from the source person to each contact it exposed, labelled by venue.
  const LIMIT = { 1: 40, 2: 60, 3: 40 };
  const cols = new Map();
  cases.forEach((c) => { cols.set(c.case, { hop: 0, id: c.case }); });
  const shown = contacts.filter((c) => {
    const n = [...cols.values()].filter((x) => x.hop === c.hop).length;
    if (n >= (LIMIT[c.hop] || 20)) return false;
    if (c.hop > 1 && !cols.has(c.exposures[0].source_person_id)) return false;
    cols.set(c.person_id, { hop: c.hop, id: c.person_id, venue: c.exposures[0].venue_id, at: c.first_exposure, risk: c.risk });
    return true;
  });
  const byHop = {};
  [...cols.values()].forEach((n) => { (byHop[n.hop] = byHop[n.hop] || []).push(n); });
  const colW = 300, rowH = 16, maxRows = Math.max(...Object.values(byHop).map((l) => l.length));
  const h = Math.max(120, maxRows * rowH + 40), pos = new Map();
  Object.entries(byHop).forEach(([hop, list]) => {
    list.forEach((n, i) => pos.set(n.id, { x: 20 + hop * colW, y: 34 + (i + 0.5) * ((h - 40) / list.length) }));
  });
  const edges = shown.map((c) => {
    const e = c.exposures[0], a = pos.get(e.source_person_id), b = pos.get(c.person_id);
    if (!a || !b) return "";
    const tier = e.risk ? ` ${t(e.risk)}` : "";
    return `<path d="M${a.x + 8},${a.y} C${a.x + colW / 2},${a.y} ${b.x - colW / 2},${b.y} ${b.x - 6},${b.y}" class="edge ${esc(e.risk || "")}" fill="none"><title>${esc(e.source_person_id)} → ${esc(c.person_id)} @ ${esc(e.venue_id)} ${esc(e.start.slice(0, 16))}${esc(tier)}</title></path>`;
  }).join("");
  const nodes = [...cols.values()].map((n) => {
    const p = pos.get(n.id);
    const where = n.venue ? ` @ ${n.venue} ${String(n.at).slice(11, 16)}` : "";
    return `<g class="node" data-hop="${n.hop}" data-risk="${esc(n.risk || "")}"><circle cx="${p.x}" cy="${p.y}" r="5" class="hop-${Math.min(n.hop, 3)} ${esc(n.risk || "")}"/><text x="${p.x + 9}" y="${p.y + 4}">${esc(String(n.id).slice(0, 14))}<tspan class="where">${esc(where)}</tspan></text></g>`;
  }).join("");
  const heads = Object.keys(byHop).map((hop) => `<text x="${20 + hop * colW}" y="16" font-weight="bold">F${hop} (${fmt(hop == 0 ? cases.length : contacts.filter((c) => c.hop == hop).length)})</text>`).join("");
  return `<p class="empty">${esc(t("graph_note"))} ${Object.values(LIMIT).join("/")})</p>
    <svg viewBox="0 0 ${colW * Object.keys(byHop).length + 60} ${h}" width="${colW * Object.keys(byHop).length + 60}" role="img">${heads}${edges}${nodes}</svg>`;
}

async function declareCase(ev) {
  ev.preventDefault();
  await api("/api/cases", { method: "POST", json: { case_id: $("#case-id").value.trim(), person_id: $("#case-person").value.trim(),
    infectious_from: localToIso($("#case-from").value), infectious_to: localToIso($("#case-to").value) } });
  say(`${t("declared")}: ${$("#case-id").value}`, true);
  await loadTrace();
}

function callList(format) {
  const r = state.lastTrace;
  const purpose = $("#trace-purpose").value.trim();
  if (purpose.length < 3) throw new Error(t("purpose_needed"));
  return download(`/api/traces/${encodeURIComponent(r.trace_id)}/call-list?format=${format}&lang=${state.lang}&purpose=${encodeURIComponent(purpose)}`,
    `call-list-${r.trace_id}.${format}`);
}

// -- operations ------------------------------------------------------------------------------------------
const bytes = (n) => (n > 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n > 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(0)} KB`);

async function loadOperations() {
  const ops = await api("/api/operations");
  const w = ops.workers;
  const totalRows = ops.store_size.reduce((a, r) => a + r.rows, 0), totalBytes = ops.store_size.reduce((a, r) => a + r.bytes, 0);
  $("#ops-kpis").innerHTML = [[t("mode"), t(ops.mode)], [t("store"), ops.store], [t("store_size"), bytes(totalBytes)],
    [t("api_ingest"), ops.api_ingest.events_per_second ? `${fmt(Math.round(ops.api_ingest.events_per_second))} ${t("events_per_s")}` : `${fmt(ops.api_ingest.received)}`]]
    .map(([k, v]) => `<div class="kpi"><b>${esc(v)}</b><span>${esc(k)}</span></div>`).join("");
  let workers = `<h2>${t("workers")} <span class="state ${esc(w.state)}" id="workers-state">${esc(t(w.state))}</span></h2>`;
  if (w.reason) workers += `<p>${esc(w.state === "not_running" ? t("embedded_not_running") : w.reason)}</p>`;
  (w.targets || []).forEach((tg) => {
    const rates = Object.entries(tg.events_per_second || {}).map(([k, v]) => `${esc(k)}: ${fmt(Math.round(v))}`).join(", ");
    workers += `<p><span class="state ${esc(tg.state)}">${esc(t(tg.state))}</span> ${esc(tg.url)} ${tg.reason ? esc(tg.reason) : ""}
      ${tg.state === "up" ? `<br>${t("events_per_s")}: ${rates || "–"} · ${t("consumer_lag")}: ${fmt(tg.consumer_lag)} · ${t("e2e")}: ${tg.e2e_p50_s ?? "–"} s / ${tg.e2e_p95_s ?? "–"} s` : ""}</p>`;
  });
  $("#ops-workers").innerHTML = workers;
  $("#ops-front").innerHTML = frontDoor(ops.front_door);
  const stored = new Map(ops.stored_per_minute.map((m) => [m.minute_us / 60e6, m.events]));
  const now = Math.floor(Date.now() / 60e3);
  const minutes = Array.from({ length: 60 }, (_, i) => now - 59 + i).map((m) => ({
    label: new Date(m * 60e3 + 7 * 3600e3).toISOString().slice(11, 16), events: stored.get(m) || 0 }));
  $("#ops-rate").innerHTML = columnChart(minutes, "events", "label");
  const reason = (r) => (T[state.lang].reasons[r] ? `${T[state.lang].reasons[r]}` : r);
  $("#ops-dead").innerHTML = ops.dead_letters.length ? barChart(ops.dead_letters, { label: (r) => reason(r.reason), value: (r) => r.count, text: (r) => `${fmt(r.count)} (${r.reason})` })
    : `<p class="empty">${t("none")}</p>`;
  $("#ops-size").innerHTML = `<table><tr><th>${t("table")}</th><th class="num">${t("rows")}</th><th class="num">${t("bytes")}</th></tr>
    ${ops.store_size.map((r) => `<tr><td>${esc(r.table)}</td><td class="num">${fmt(r.rows)}</td><td class="num">${bytes(r.bytes)}</td></tr>`).join("")}
    <tr><th></th><th class="num">${fmt(totalRows)}</th><th class="num">${bytes(totalBytes)}</th></tr></table>`;
}

// The front door's own figures (counters since the server started, summed over --workers).
const word = (table, key, otherwise = key) => (T[state.lang][table] || {})[key] || T.vi[table][key] || otherwise;
const FRONT_CAUSES = ["overloaded", "kafka", "store", "timeout", "shutting_down", "token_file"];
const statusColour = (s) => (s < 300 ? "#2e7d32" : s < 500 ? "#f9a825" : "#c62828");
const ms = (v) => (v == null ? "–" : `≤ ${fmt(v)}`);

function frontDoor(fd) {
  const kind = fd.kind === "kafka" ? "kafka" : "embedded";
  const requests = Object.entries(fd.requests || {}).map(([status, n]) => ({ status: Number(status), n }))
    .filter((r) => r.n > 0).sort((a, b) => a.status - b.status);
  const total = requests.reduce((a, r) => a + r.n, 0);
  const scans = fd.scans || {}, unavailable = fd.unavailable || {};
  const kpis = [["requests", t("front_requests"), fmt(total)], ["accepted", t("front_accepted"), fmt(scans.accepted)],
    ["dead_lettered", t("front_dead"), fmt(scans.dead_lettered)],
    ["answer", t("front_answer"), `${ms(fd.answer_ms_p50)} / ${ms(fd.answer_ms_p99)} ms`],
    ["queued", t("front_queued"), fmt(fd.queued_checkins)]]
    .map(([key, label, value]) => `<div class="kpi" data-front-kpi="${key}"><b>${esc(value)}</b><span>${esc(label)}</span></div>`).join("");
  const byStatus = requests.length
    ? barChart(requests, { label: (r) => `${r.status} ${word("front_statuses", r.status, "")}`, value: (r) => r.n,
      text: (r) => fmt(r.n), colour: (r) => statusColour(r.status) })
    : `<p class="empty">${esc(t("front_no_requests"))}</p>`;
  const causes = [...FRONT_CAUSES, ...Object.keys(unavailable).filter((c) => !FRONT_CAUSES.includes(c))];
  const rows = causes.map((c) => [c, unavailable[c] || 0]);
  const unexplained = ((fd.requests || {})["503"] || 0) - Object.values(unavailable).reduce((a, n) => a + n, 0);
  if (unexplained > 0) rows.push(["other", unexplained]);
  const byCause = `<table><tr><th>${esc(t("front_cause"))}</th><th class="num">${esc(t("front_count"))}</th></tr>
    ${rows.map(([c, n]) => `<tr data-cause="${esc(c)}" class="${n ? "nonzero" : ""}"><td>${esc(word("front_causes", c))} <small>${esc(c)}</small></td>
      <td class="num">${fmt(n)}</td></tr>`).join("")}</table>`;
  return `<h2>${esc(t("front_title"))} <span class="state front-kind" id="front-kind" data-kind="${kind}">${esc(word("front_kinds", kind))}</span></h2>
    <p id="front-meaning">${esc(word("front_202", kind))} ${esc(t("front_503"))}</p>
    <div class="kpis mini">${kpis}</div>
    <div class="grid2">
      <div><h3>${esc(t("front_by_status"))}</h3><div id="front-status">${byStatus}</div></div>
      <div><h3>${esc(t("front_by_cause"))}</h3><div id="front-causes">${byCause}</div></div>
    </div>
    <p class="empty">${esc(t("front_since"))}</p>`;
}

// -- venues ----------------------------------------------------------------------------------------------
async function loadVenues() {
  const perms = new Set(state.me.permissions);
  $("#venue-form").hidden = !perms.has("register_venue");
  const q = new URLSearchParams();
  if ($("#venues-commune").value) q.set("commune", $("#venues-commune").value);
  if ($("#venues-category").value) q.set("category", $("#venues-category").value);
  const n = (latest.venues = (latest.venues || 0) + 1);
  const venues = await api(`/api/venues?${q}`);
  if (isStale("venues", n)) return;
  const names = new Map(state.communes.map((c) => [c.commune_code, c.name_vi]));
  const canQr = perms.has("issue_venue_qr");
  const canZone = perms.has("register_venue");
  // Each zone is a button for its own poster; "+ Zone" adds one (roles that register venues).
  const zones = (v) => (v.zones || []).map((z) => canQr ? `<button type="button" class="secondary zone-poster" data-id="${esc(v.venue_id)}"
    data-zone="${esc(z)}">${esc(z)}</button>` : esc(z)).join(" ")
    + (canZone ? ` <button type="button" class="secondary add-zone" data-id="${esc(v.venue_id)}">${t("add_zone")}</button>` : "");
  $("#venues-list").innerHTML = `<table><tr><th>${t("venue_id")}</th><th>${t("venue_name")}</th><th>${t("category")}</th><th>${t("commune")}</th>
    <th class="num">${t("capacity")}</th><th>${t("zones")}</th><th></th></tr>${venues.slice(0, 1000).map((v) => `<tr data-venue="${esc(v.venue_id)}"><td>${esc(v.venue_id)}</td>
    <td>${esc(v.name)}</td><td>${esc(catName(v.category))}</td><td>${esc(names.get(v.commune_code) || v.commune_code)}</td><td class="num">${fmt(v.capacity)}</td>
    <td class="zones">${zones(v)}</td><td>${canQr ? `<button type="button" class="secondary poster" data-id="${esc(v.venue_id)}">${t("poster")}</button>
      <button type="button" class="secondary qr" data-id="${esc(v.venue_id)}">PNG</button>` : ""}</td></tr>`).join("")}</table>`;
}

async function registerVenue(ev) {
  ev.preventDefault();
  const id = $("#venue-id").value.trim();
  await api("/api/venues", { method: "POST", json: { venue_id: id, name: $("#venue-name").value.trim(),
    category: $("#venue-category").value, commune_code: $("#venue-commune").value, capacity: Number($("#venue-capacity").value) } });
  say(`${t("registered_ok")}: ${id}`, true);
  $("#venues-commune").value = $("#venue-commune").value;
  await loadVenues();
}

// -- audit -----------------------------------------------------------------------------------------------
async function loadAudit() {
  const rows = await api("/api/audit?limit=300");
  $("#audit-list").innerHTML = `<table><tr><th>${t("at")}</th><th>${t("actor")}</th><th>${t("action")}</th><th>Case</th><th>${t("purpose")}</th><th>${t("detail")}</th></tr>
    ${rows.map((r) => `<tr><td>${esc(r.at.slice(0, 19).replace("T", " "))}</td><td>${esc(r.actor)}</td><td>${esc(r.action)}</td><td>${esc(r.case_id)}</td>
    <td>${esc(r.purpose)}</td><td><small>${esc(JSON.stringify(r.detail))}</small></td></tr>`).join("")}</table>`;
}

const LOADERS = { coverage: loadCoverage, trace: loadTrace, operations: loadOperations, venues: loadVenues, audit: loadAudit };

// -- wiring ----------------------------------------------------------------------------------------------
window.addEventListener("hashchange", () => { if (!location.hash.startsWith("#token=")) route(); });
$("#signin-form").addEventListener("submit", (ev) => { ev.preventDefault(); signIn($("#token").value.trim()); });
$("#signout").addEventListener("click", signOut);
$("#lang").addEventListener("click", () => {
  state.lang = state.lang === "vi" ? "en" : "vi";
  localStorage.setItem("qrtrace.lang", state.lang);
  applyLabels(); fillSelects(); route();
});
$("#coverage-filters").addEventListener("submit", (ev) => { ev.preventDefault(); guard(loadCoverage)(); });
$("#cov-period").addEventListener("change", guard(loadCoverage));
$("#cov-csv").addEventListener("click", guard(() => download(`/api/reports/coverage/export?${coverageQuery()}&format=csv`, "coverage.csv")));
$("#census-form").addEventListener("submit", guard(uploadCensus));
$("#cov-xlsx").addEventListener("click", guard(() => download(`/api/reports/coverage/export?${coverageQuery()}&format=xlsx`, "coverage.xlsx")));
$("#trace-form").addEventListener("submit", guard(runTrace));
$("#case-form").addEventListener("submit", guard(declareCase));
$("#trace-csv").addEventListener("click", guard(() => callList("csv")));
$("#trace-xlsx").addEventListener("click", guard(() => callList("xlsx")));
$("#venue-form").addEventListener("submit", guard(registerVenue));
$("#venue-filters").addEventListener("submit", (ev) => { ev.preventDefault(); guard(loadVenues)(); });
$("#venues-list").addEventListener("click", guard(async (ev) => {
  const b = ev.target.closest("button");
  if (!b) return;
  const id = b.dataset.id;
  if (b.classList.contains("poster")) await download(`/api/venues/${encodeURIComponent(id)}/poster.pdf?lang=${state.lang}`, `poster-${id}.pdf`);
  if (b.classList.contains("qr")) await download(`/api/venues/${encodeURIComponent(id)}/qr.png`, `qr-${id}.png`);
  if (b.classList.contains("zone-poster")) {
    const zone = b.dataset.zone;
    await download(`/api/venues/${encodeURIComponent(id)}/poster.pdf?lang=${state.lang}&zone=${encodeURIComponent(zone)}`, `poster-${id}-${zone}.pdf`);
  }
  if (b.classList.contains("add-zone")) {
    const zone = (window.prompt(t("zone_name")) || "").trim();
    if (!zone) return;
    await api(`/api/venues/${encodeURIComponent(id)}/zones`, { method: "POST", json: { zone } });
    say(`${t("zone_added")}: ${id} / ${zone}`, true);
    await loadVenues();
  }
}));

/** A page kept in its own file (api/console/<page>.js, loaded after this one) registers itself here:
 * its labels in both languages, the permission that shows it and its loader. The console starts once every
 * script has run (DOMContentLoaded), so a page registered by a later file is routed like the built-in ones. */
function registerPage(name, { permission, loader, labels = {} }) {
  PAGES[name] = permission;
  LOADERS[name] = loader;
  for (const lang of Object.keys(labels)) Object.assign(T[lang], labels[lang]);
}

function boot() {
  applyLabels();
  $("#cov-date").value = vnToday();
  if (location.hash.startsWith("#token=")) {  // a sign-in link: keep the token for this tab, drop it from the address bar
    const token = decodeURIComponent(location.hash.slice(7));
    history.replaceState(null, "", location.pathname);
    signIn(token);
  } else if (state.token) {
    signIn(state.token);
  } else {
    route();
  }
}
document.addEventListener("DOMContentLoaded", boot);

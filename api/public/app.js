// The public exposure-site page: reads /public/exposure-sites.json (no token) and shows each site as a card.
// Vietnamese by default, English one click away (?lang=en). Text goes in with textContent only.
"use strict";

const LABELS = {
  vi: {
    title: "Địa điểm có ca bệnh đã đến",
    other_lang: "English",
    intro: "Người bệnh đã đến các địa điểm dưới đây trong các khung giờ này. Nếu bạn cũng có mặt ở đó, hãy làm theo khuyến cáo.",
    commune: "Xã / thị trấn", all_communes: "Tất cả các xã", date: "Ngày", show: "Xem", clear: "Bỏ lọc",
    download: "Tải danh sách:",
    privacy: "Danh sách chỉ nêu địa điểm và thời gian, không bao giờ nêu tên hay thông tin của người bệnh.",
    loading: "Đang tải…", count: (n) => `${n} địa điểm`, none: "Không có địa điểm nào khớp bộ lọc.",
    from: "từ", to: "đến", error: "Không tải được danh sách; vui lòng thử lại sau.",
    busy: (s) => `Quá nhiều yêu cầu; thử lại sau ${s} giây.`,
  },
  en: {
    title: "Places a positive case visited",
    other_lang: "Tiếng Việt",
    intro: "A person who tested positive was at these places at these times. If you were there too, follow the advice.",
    commune: "Commune", all_communes: "All communes", date: "Day", show: "Show", clear: "Clear",
    download: "Download the list:",
    privacy: "The list names places and times only, never a person.",
    loading: "Loading…", count: (n) => `${n} place${n === 1 ? "" : "s"}`, none: "No place matches these filters.",
    from: "from", to: "to", error: "The list could not be loaded; please try again later.",
    busy: (s) => `Too many requests; try again in ${s} s.`,
  },
};

const state = { lang: "vi", communesKnown: false };

function $(id) { return document.getElementById(id); }

function label(key, ...args) {
  const value = LABELS[state.lang][key];
  return typeof value === "function" ? value(...args) : value;
}

function applyLabels() {
  document.documentElement.lang = state.lang;
  document.body.dataset.lang = state.lang;
  document.title = label("title");
  for (const el of document.querySelectorAll("[data-t]")) el.textContent = label(el.dataset.t);
  $("lang-toggle").lang = state.lang === "vi" ? "en" : "vi";
}

// "2021-07-20T06:25:03+07:00" -> ["20/07/2021", "06:25"]: the answer is already in local time (+07:00).
function dayAndTime(iso) {
  return [`${iso.slice(8, 10)}/${iso.slice(5, 7)}/${iso.slice(0, 4)}`, iso.slice(11, 16)];
}

function when(from, to) {
  const [d1, t1] = dayAndTime(from);
  const [d2, t2] = dayAndTime(to);
  const end = d1 === d2 ? t2 : `${t2} ${d2}`;
  return `${d1}: ${label("from")} ${t1} ${label("to")} ${end}`;
}

function query() {
  const params = new URLSearchParams({ lang: state.lang });
  if ($("f-commune").value) params.set("commune", $("f-commune").value);
  if ($("f-date").value) params.set("date", $("f-date").value);
  return params;
}

function card(site) {
  const li = document.createElement("li");
  li.className = "site";
  li.dataset.siteId = site.site_id;
  li.dataset.commune = site.commune_code;
  const h2 = document.createElement("h2");
  h2.textContent = site.venue_name || site.venue_id;
  const where = document.createElement("p");
  where.className = "where";
  where.textContent = `${site.category_name} · ${site.commune_name}`;
  const time = document.createElement("p");
  time.className = "when";
  time.textContent = when(site.from, site.to);
  const advice = document.createElement("p");
  advice.className = "advice";
  advice.textContent = site.advice;
  li.append(h2, where, time, advice);
  return li;
}

function fillCommunes(sites) {
  const select = $("f-commune");
  const names = new Map(sites.map((s) => [s.commune_code, s.commune_name]));
  const sorted = [...names].sort((a, b) => a[1].localeCompare(b[1], "vi"));
  for (const [code, name] of sorted) {
    const option = document.createElement("option");
    option.value = code;
    option.textContent = name;
    select.append(option);
  }
  state.communesKnown = true;
}

async function load() {
  const params = query();
  $("status").textContent = label("loading");
  const list = $("sites");
  delete list.dataset.loaded;
  let answer;
  try {
    const response = await fetch(`/public/exposure-sites.json?${params}`, { headers: { Accept: "application/json" } });
    if (response.status === 429) {
      $("status").textContent = label("busy", response.headers.get("Retry-After") || "60");
      return;
    }
    if (!response.ok) throw new Error(String(response.status));
    answer = await response.json();
  } catch (_) {
    $("status").textContent = label("error");
    return;
  }
  if (!state.communesKnown && !params.has("commune") && !params.has("date")) fillCommunes(answer.sites);
  list.replaceChildren(...answer.sites.map(card));
  $("status").textContent = answer.sites.length ? label("count", answer.sites.length) : label("none");
  $("csv-link").href = `/public/exposure-sites.csv?${params}`;
  $("json-link").href = `/public/exposure-sites.json?${params}`;
  list.dataset.loaded = params.toString();
}

function setLang(lang) {
  state.lang = lang;
  const url = new URL(window.location.href);
  if (lang === "vi") url.searchParams.delete("lang");
  else url.searchParams.set("lang", lang);
  window.history.replaceState(null, "", url);
  applyLabels();
  load();
}

document.addEventListener("DOMContentLoaded", () => {
  const asked = new URLSearchParams(window.location.search).get("lang");
  state.lang = asked === "en" ? "en" : "vi";
  applyLabels();
  $("lang-toggle").addEventListener("click", () => setLang(state.lang === "vi" ? "en" : "vi"));
  $("filters").addEventListener("submit", (event) => { event.preventDefault(); load(); });
  $("f-clear").addEventListener("click", () => { $("f-commune").value = ""; $("f-date").value = ""; load(); });
  load();
});

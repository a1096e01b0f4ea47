// qrtrace console: the crowding hotspots page (GET /api/reports/hotspots). Registered with app.js's
// registerPage; drawn with its barChart and columnChart and an SVG heatmap of hour x category.
"use strict";

(() => {
  const DAYS = [1, 7, 14, 28];
  let latestLoad = 0;  // a newer request wins, whatever order the answers arrive in

  function fillFilters() {
    const commune = $("#hot-commune"), days = $("#hot-days");
    const keep = commune.value;
    commune.innerHTML = `<option value="">${esc(t("all_communes"))}</option>` +
      state.communes.map((c) => `<option value="${esc(c.commune_code)}">${esc(c.name_vi)}</option>`).join("");
    commune.value = keep;
    const keepDays = days.value || "7";
    days.innerHTML = DAYS.map((d) => `<option value="${d}">${esc(t("hot_days_n").replace("{n}", d))}</option>`).join("");
    days.value = keepDays;
  }

  const localTime = (iso) => `${iso.slice(8, 10)}/${iso.slice(5, 7)} ${iso.slice(11, 16)}`;  // already +07:00
  const ratio = (r) => (r === null || r === undefined ? "–" : pct(r));

  function heatmap(categories) {
    if (!categories.length) return `<p class="empty">${esc(t("none"))}</p>`;
    const cell = 20, left = 190, top = 18, w = left + 24 * cell + 4;
    const max = Math.max(1e-9, ...categories.flatMap((c) => c.mean_present));
    const hours = Array.from({ length: 24 }, (_, h) => (h % 3 === 0
      ? `<text x="${left + h * cell + cell / 2}" y="12" text-anchor="middle">${h}</text>` : "")).join("");
    const rows = categories.map((c, i) => {
      const y = top + i * cell;
      const cells = c.mean_present.map((v, h) => `<rect class="heat" x="${left + h * cell}" y="${y}" width="${cell - 1}" height="${cell - 1}"
        fill="#b71c1c" fill-opacity="${v > 0 ? (0.12 + 0.88 * v / max).toFixed(3) : 0}"><title>${esc(c.name)} · ${h}:00 · ${t("hot_mean")}: ${v.toFixed(2)} · ${t("hot_arrivals")}: ${fmt(c.arrivals[h])} · ${t("hot_peak")}: ${fmt(c.peak_present[h])}</title></rect>`).join("");
      return `<text x="0" y="${y + 14}">${esc(String(c.name).slice(0, 28))}</text>
        <rect x="${left}" y="${y}" width="${24 * cell - 1}" height="${cell - 1}" fill="#f4f4f4"/>${cells}`;
    }).join("");
    return `<svg viewBox="0 0 ${w} ${top + categories.length * cell + 4}" width="100%" role="img" aria-label="${esc(t("hot_heatmap"))}">${hours}${rows}</svg>`;
  }

  function venueTable(venues) {
    if (!venues.length) return `<p class="empty">${esc(t("hot_nobody"))}</p>`;
    return `<table><tr><th>#</th><th>${esc(t("venue"))}</th><th>${esc(t("category"))}</th><th>${esc(t("commune"))}</th>
      <th class="num">${esc(t("hot_over"))}</th><th class="num">${esc(t("hot_peak"))}</th><th class="num">${esc(t("capacity"))}</th>
      <th class="num">${esc(t("hot_ratio"))}</th><th>${esc(t("hot_peak_at"))}</th></tr>
      ${venues.map((v, i) => `<tr class="${v.over_capacity_windows ? "over" : ""}" data-venue="${esc(v.venue_id)}"><td>${i + 1}</td>
      <td>${esc(v.name)}</td><td>${esc(catName(v.category))}</td><td>${esc(v.commune_name)}</td>
      <td class="num">${fmt(v.over_capacity_windows)}</td><td class="num">${fmt(v.peak_present)}</td><td class="num">${fmt(v.capacity)}</td>
      <td class="num">${ratio(v.peak_ratio)}</td><td>${esc(localTime(v.peak_at))}</td></tr>`).join("")}</table>`;
  }

  function communeTable(communes) {
    if (!communes.length) return `<p class="empty">${esc(t("none"))}</p>`;
    return `<table><tr><th>${esc(t("commune"))}</th><th class="num">${esc(t("hot_venues_over"))}</th>
      <th class="num">${esc(t("hot_over"))}</th><th class="num">${esc(t("hot_ratio"))}</th></tr>
      ${communes.map((c) => `<tr><td>${esc(c.name)}</td><td class="num">${fmt(c.venues_over_capacity)} / ${fmt(c.venues)}</td>
      <td class="num">${fmt(c.over_capacity_windows)}</td><td class="num">${ratio(c.peak_ratio)}</td></tr>`).join("")}</table>`;
  }

  async function loadHotspots() {
    if (!$("#hot-days").options.length) fillFilters();
    const q = new URLSearchParams({ days: $("#hot-days").value || "7", limit: "50", lang: state.lang });
    if ($("#hot-commune").value) q.set("commune", $("#hot-commune").value);
    const n = ++latestLoad;
    $("#hot-bars").textContent = t("loading");
    const r = await api(`/api/reports/hotspots?${q}`);
    if (n !== latestLoad) return;
    fillFilters();
    const over = r.communes.reduce((s, c) => s + c.over_capacity_windows, 0);
    const venuesOver = r.communes.reduce((s, c) => s + c.venues_over_capacity, 0);
    const top = r.venues[0];
    $("#hot-kpis").innerHTML = [
      [t("hot_venues_over"), `${fmt(venuesOver)} / ${fmt(r.venues_total)}`],
      [t("hot_windows_over").replace("{m}", r.window_minutes), fmt(over)],
      [t("hot_top_ratio"), top ? `${ratio(top.peak_ratio)} · ${esc(top.name)}` : "–"],
    ].map(([k, v]) => `<div class="kpi"><b>${v}</b><span>${esc(k)}</span></div>`).join("");
    $("#hot-period").textContent = `${localTime(r.since)} → ${localTime(r.as_of)}`;
    const shown = r.venues.slice(0, 15);
    $("#hot-bars").innerHTML = shown.length ? barChart(shown, {
      label: (v) => v.name,
      value: (v) => v.over_capacity_windows,
      text: (v) => `${fmt(v.over_capacity_windows)} · ${fmt(v.peak_present)}/${fmt(v.capacity)}`,
      colour: (v) => (v.over_capacity_windows ? "#b71c1c" : "#f9a825"),
    }) : `<p class="empty">${esc(t("hot_nobody"))}</p>`;
    $("#hot-heatmap").innerHTML = heatmap(r.categories);
    const perHour = Array.from({ length: 24 }, (_, h) => ({
      hour: `${h}h`, arrivals: r.categories.reduce((s, c) => s + c.arrivals[h], 0) }));
    $("#hot-hours").innerHTML = r.categories.length ? columnChart(perHour, "arrivals", "hour") : `<p class="empty">${esc(t("none"))}</p>`;
    $("#hot-busiest").innerHTML = r.categories.map((c) => `<li>${esc(c.name)}: <b>${c.busiest_hour}:00</b> (${c.mean_present[c.busiest_hour].toFixed(2)})</li>`).join("");
    $("#hot-table").innerHTML = venueTable(r.venues);
    $("#hot-communes").innerHTML = communeTable(r.communes);
    $("#page-hotspots").dataset.shown = `${r.days}|${q.get("commune") || ""}|${state.lang}`;  // what is drawn (tests wait on it)
  }

  // this script runs after the page's markup (the end of index.html's body): its elements exist
  $("#hotspot-filters").addEventListener("submit", (ev) => { ev.preventDefault(); guard(loadHotspots)(); });
  $("#hot-days").addEventListener("change", guard(loadHotspots));
  $("#hot-commune").addEventListener("change", guard(loadHotspots));

  registerPage("hotspots", {
    permission: "read_coverage",
    loader: loadHotspots,
    labels: {
      vi: {
        nav_hotspots: "Điểm đông người", hot_title: "Điểm tập trung đông người (theo khung 15 phút)",
        hot_days: "Khoảng thời gian", hot_days_n: "{n} ngày qua", hot_bars: "Địa điểm theo số khung vượt sức chứa",
        hot_heatmap: "Giờ cao điểm theo loại hình (số người có mặt trung bình mỗi địa điểm)",
        hot_hours_title: "Lượt đến theo giờ trong ngày", hot_busiest: "Giờ đông nhất của từng loại hình",
        hot_table: "Xếp hạng địa điểm", hot_communes: "Theo xã", hot_over: "Khung vượt", hot_peak: "Đông nhất",
        hot_ratio: "% sức chứa", hot_peak_at: "Lúc đông nhất", hot_mean: "trung bình", hot_arrivals: "lượt đến",
        hot_venues_over: "Địa điểm từng vượt sức chứa", hot_windows_over: "Khung {m} phút vượt sức chứa",
        hot_top_ratio: "Đông nhất so với sức chứa", hot_nobody: "Không có khung giờ nào có người trong khoảng này.",
        hot_note: "Giờ địa phương (UTC+07:00). Một khung vượt sức chứa khi số người có mặt lớn hơn sức chứa đã đăng ký.",
      },
      en: {
        nav_hotspots: "Crowding", hot_title: "Crowding hotspots (15-minute windows)",
        hot_days: "Period", hot_days_n: "Last {n} days", hot_bars: "Venues by windows over capacity",
        hot_heatmap: "Busiest hours per category (mean people present per venue)",
        hot_hours_title: "Arrivals per hour of day", hot_busiest: "Each category's busiest hour",
        hot_table: "Venue ranking", hot_communes: "By commune", hot_over: "Windows over", hot_peak: "Peak",
        hot_ratio: "% capacity", hot_peak_at: "Peak at", hot_mean: "mean", hot_arrivals: "arrivals",
        hot_venues_over: "Venues ever over capacity", hot_windows_over: "{m}-minute windows over capacity",
        hot_top_ratio: "Fullest peak", hot_nobody: "No window held anyone in this period.",
        hot_note: "Local time (UTC+07:00). A window is over capacity when more people are present than the registered capacity.",
      },
    },
  });
})();

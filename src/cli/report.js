// stickydb report: draws every chart from the embedded JSON with the
// vendored Chart.js (vendor/chart.js). Offline: no font, no network.
// Each chart's container gets data-drawn = the number of elements drawn,
// and the body data-errors = every script error, so a headless browser
// test can check the page (tests/report_browser.rs).
(function () {
  "use strict";
  var errors = [];
  function fail(msg) {
    errors.push(String(msg));
    document.body.setAttribute("data-errors", errors.join(" | "));
  }
  window.addEventListener("error", function (e) { fail(e.message); });
  var consoleError = console.error;
  console.error = function () {
    fail(Array.prototype.join.call(arguments, " "));
    consoleError.apply(console, arguments);
  };

  var data = JSON.parse(document.getElementById("stickydb-data").textContent);
  var palette = ["#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477", "#66aa00"];
  var fmtInt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  var fmtPct = new Intl.NumberFormat("en-US", { style: "percent", maximumFractionDigits: 1 });
  var fmtMoney = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  Chart.defaults.animation = false;
  Chart.defaults.font.family = "system-ui, sans-serif";
  Chart.defaults.plugins.legend.position = "top";

  function rows(key) { return Array.isArray(data[key]) ? data[key] : []; }
  function container(id, title) {
    var section = document.createElement("section");
    section.className = "chart";
    section.setAttribute("data-chart", id);
    var h = document.createElement("h2");
    h.textContent = title;
    section.appendChild(h);
    document.getElementById("charts").appendChild(section);
    return section;
  }
  function drawn(section, n) { section.setAttribute("data-drawn", String(n)); }
  function countDrawn(chart) {
    var n = 0;
    chart.data.datasets.forEach(function (_, i) { n += chart.getDatasetMeta(i).data.length; });
    return n;
  }
  function chart(id, title, type, labels, datasets, options) {
    var section = container(id, title);
    var canvas = document.createElement("canvas");
    canvas.height = 110;
    section.appendChild(canvas);
    var c = new Chart(canvas, { type: type, data: { labels: labels, datasets: datasets }, options: options || {} });
    drawn(section, countDrawn(c));
    return c;
  }
  function series(list, key, i, extra) {
    var d = { label: key, data: list.map(function (r) { return r[key]; }), borderColor: palette[i % palette.length],
      backgroundColor: palette[i % palette.length], borderWidth: 1.5, pointRadius: 0 };
    for (var k in extra || {}) { d[k] = extra[k]; }
    return d;
  }
  function axes(yTitle, tick) {
    return { scales: { x: { ticks: { maxTicksLimit: 12 } },
      y: { beginAtZero: true, title: { display: !!yTitle, text: yTitle }, ticks: tick ? { callback: tick } : {} } },
      interaction: { mode: "index", intersect: false } };
  }
  function mapBars(id, title, map, what) {
    var names = Object.keys(map || {});
    if (!names.length) { return; }
    chart(id, title, "bar", names,
      [{ label: what, data: names.map(function (n) { return map[n]; }), backgroundColor: palette[0] }],
      { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, title: { display: true, text: what } } } });
  }

  // Header: the range and the store's offset.
  document.getElementById("range").textContent =
    data.from + " – " + data.to + " · local days at UTC" + data.utc_offset;

  var active = rows("active");
  chart("active", "Active users (DAU, rolling WAU and MAU)", "line", active.map(function (r) { return r.day; }),
    ["dau", "wau", "mau"].map(function (k, i) { return series(active, k, i); }), axes("users"));
  chart("stickiness", "Stickiness (DAU ÷ MAU)", "line", active.map(function (r) { return r.day; }),
    [series(active, "stickiness", 3)], axes("DAU ÷ MAU", function (v) { return fmtPct.format(v); }));

  // Retention: a table, each cell the share of its cohort, shaded.
  (function () {
    var cohorts = (data.retention && data.retention.cohorts) || [];
    var section = container("retention", "Retention by weekly cohort: share of the cohort active n weeks later");
    var table = document.createElement("table");
    table.className = "heatmap";
    var width = cohorts.reduce(function (m, c) { return Math.max(m, c.counts.length); }, 0);
    var head = "<tr><th>cohort</th><th>users</th>";
    for (var k = 0; k < width; k++) { head += "<th>week " + k + "</th>"; }
    table.innerHTML = head + "</tr>";
    var cells = 0;
    cohorts.forEach(function (c) {
      var tr = document.createElement("tr");
      tr.innerHTML = "<th>" + c.cohort + "</th><td>" + fmtInt.format(c.size) + "</td>";
      c.counts.forEach(function (n, k) {
        var share = c.size ? n / c.size : 0;
        var td = document.createElement("td");
        td.textContent = fmtPct.format(share);
        td.title = c.cohort + ", week " + k + ": " + fmtInt.format(n) + " of " + fmtInt.format(c.size);
        td.style.background = "rgba(51,102,204," + (0.08 + 0.85 * share).toFixed(3) + ")";
        td.style.color = share > 0.55 ? "#fff" : "#000";
        tr.appendChild(td);
        cells++;
      });
      table.appendChild(tr);
    });
    section.appendChild(table);
    drawn(section, cells);
  })();

  var life = rows("lifecycle");
  chart("lifecycle", "Lifecycle by week (dormant below zero)", "bar", life.map(function (r) { return r.period; }),
    ["new", "returning", "resurrecting", "dormant"].map(function (k, i) { return series(life, k, i, { stack: "s" }); }),
    { scales: { x: { stacked: true }, y: { stacked: true, title: { display: true, text: "users" } } },
      interaction: { mode: "index", intersect: false } });

  var moves = rows("stage_transitions");
  var entered = {};
  moves.forEach(function (r) { Object.keys(r).forEach(function (k) { if (k.indexOf("entered:") === 0) { entered[k] = 1; } }); });
  var enteredKeys = Object.keys(entered);
  if (enteredKeys.length) {
    chart("transitions", "Stage transitions: users entering each stage per day", "bar", moves.map(function (r) { return r.day; }),
      enteredKeys.map(function (k, i) {
        return { label: k.slice(8), data: moves.map(function (r) { return r[k] || 0; }), backgroundColor: palette[i % palette.length], stack: "s" };
      }),
      { scales: { x: { stacked: true, ticks: { maxTicksLimit: 12 } }, y: { stacked: true, title: { display: true, text: "users" } } },
        interaction: { mode: "index", intersect: false } });
  }

  mapBars("stages", "Lifecycle stages on " + data.to, data.stages, "users");
  mapBars("rfm", "RFM segments on " + data.to, data.rfm_segments, "purchasers");

  var daily = rows("daily");
  chart("gmv", "Daily GMV (currency units) and orders", "bar", daily.map(function (r) { return r.day; }),
    [{ label: "GMV", data: daily.map(function (r) { return r.gmv / 100; }), backgroundColor: palette[0], yAxisID: "y" },
     { label: "orders", type: "line", data: daily.map(function (r) { return r.orders; }), borderColor: palette[1],
       backgroundColor: palette[1], pointRadius: 0, yAxisID: "orders" }],
    { scales: { x: { ticks: { maxTicksLimit: 12 } },
        y: { beginAtZero: true, title: { display: true, text: "GMV" }, ticks: { callback: function (v) { return fmtMoney.format(v); } } },
        orders: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false }, title: { display: true, text: "orders" } } },
      interaction: { mode: "index", intersect: false },
      plugins: { tooltip: { callbacks: { label: function (c) {
        return c.dataset.label + ": " + (c.dataset.yAxisID === "y" ? fmtMoney.format(c.parsed.y) : fmtInt.format(c.parsed.y));
      } } } } });

  // What users did and spent: the top values of a dimension, net revenue of
  // the users each value brought first, the weekly cohorts' LTV curves and
  // session depth (src/cli/report_dims.rs).
  var what = data.what || {};
  var days = function (list) { return list.map(function (r) { return r.day; }); };
  var line = function (label, values, i, extra) {
    var d = { label: label, data: values, borderColor: palette[i % palette.length],
      backgroundColor: palette[i % palette.length], borderWidth: 1.5, pointRadius: 0 };
    for (var k in extra || {}) { d[k] = extra[k]; }
    return d;
  };
  var money = function (v) { return fmtMoney.format(v); };
  var b = what.breakdown;
  if (b && b.rows.length) {
    // every day of the range (a day without rows is 0, not left out)
    var dayList = days(rows("daily")), values = [];
    b.rows.forEach(function (r) { if (values.indexOf(r.value) < 0) { values.push(r.value); } });
    chart("breakdown", "Active users by " + b.by + " (top values; the rest as (other))", "line", dayList,
      values.map(function (v, i) {
        var at = {};
        b.rows.forEach(function (r) { if (r.value === v) { at[r.day] = r.users; } });
        return line(v, dayList.map(function (d) { return at[d] || 0; }), i);
      }), axes("users"));
    var rev = b.revenue_by_first_touch || [];
    if (rev.length) {
      chart("revenue-segments", "Net revenue (currency units) of the users each " + b.by + " brought first", "line",
        days(rev[0].rows), rev.map(function (x, i) {
          return line(x.value + " (" + fmtInt.format(x.users) + " users)", x.rows.map(function (r) { return r.net_minor / 100; }), i);
        }), axes("net revenue", money));
    }
  }
  var cohorts = (what.ltv || []).filter(function (c) { return c.size > 0; });
  if (cohorts.length) {
    var weeks = cohorts.reduce(function (m, c) { return Math.max(m, c.cumulative_net_minor.length); }, 0);
    var labels = [];
    for (var w = 0; w < weeks; w++) { labels.push("week " + w); }
    chart("ltv", "LTV: cumulative net spend per cohort user (currency units), weekly cohorts", "line", labels,
      cohorts.map(function (c, i) {
        return line(c.cohort + " (" + fmtInt.format(c.size) + " users)",
          c.cumulative_net_minor.map(function (x) { return x / 100; }), i, { pointRadius: 2 });
      }), axes("per cohort user", money));
  }
  var sess = what.sessions || [];
  if (sess.some(function (r) { return r.sessions > 0; })) {
    chart("sessions", "Sessions per day (by first event), bounce rate and mean duration", "bar", days(sess),
      [{ label: "sessions", data: sess.map(function (r) { return r.sessions; }), backgroundColor: palette[0], yAxisID: "y" },
       line("bounce rate", sess.map(function (r) { return r.bounce_rate; }), 1, { type: "line", yAxisID: "rate" }),
       line("mean duration (minutes)", sess.map(function (r) {
         return r.mean_duration_ms === null ? null : r.mean_duration_ms / 60000;
       }), 2, { type: "line", yAxisID: "minutes" })],
      { scales: { x: { ticks: { maxTicksLimit: 12 } },
          y: { beginAtZero: true, title: { display: true, text: "sessions" } },
          rate: { position: "right", beginAtZero: true, max: 1, grid: { drawOnChartArea: false },
            ticks: { callback: function (v) { return fmtPct.format(v); } }, title: { display: true, text: "bounce rate" } },
          minutes: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false },
            title: { display: true, text: "minutes" } } },
        interaction: { mode: "index", intersect: false } });
  }

  var basis = data.tier_basis === "growth_value" ? "by growth value" : "by points earned";
  mapBars("tiers", "Loyalty tiers " + basis + " (users now)", data.tiers, "users");
  var tierDays = rows("tiers_by_day");
  var tierNames = Object.keys(data.tiers || {});
  if (tierDays.length && tierNames.length) {
    chart("tiers_over_time", "Users per tier at the end of each day", "line", tierDays.map(function (r) { return r.day; }),
      tierNames.map(function (k, i) { return series(tierDays, k, i, { fill: true, stack: "s" }); }),
      { scales: { x: { ticks: { maxTicksLimit: 12 } }, y: { stacked: true, beginAtZero: true, title: { display: true, text: "users" } } },
        interaction: { mode: "index", intersect: false } });
  }

  // Rule tags (docs/features.md): users holding each at the end of each day.
  var tagDays = rows("rule_tags_by_day");
  var tagNames = tagDays.length ? Object.keys(tagDays[0]).filter(function (k) { return k !== "day"; }) : [];
  if (tagNames.length) {
    chart("rule_tags", "Users holding each rule tag at the end of each day", "line", tagDays.map(function (r) { return r.day; }),
      tagNames.map(function (k, i) { return series(tagDays, k, i); }),
      { scales: { x: { ticks: { maxTicksLimit: 12 } }, y: { beginAtZero: true, title: { display: true, text: "users" } } },
        interaction: { mode: "index", intersect: false } });
  }

  // Coupon redemption per template: what became of every coupon issued.
  var coupons = rows("coupons");
  if (coupons.length) {
    chart("coupons", "Coupons by template: redeemed, expired, outstanding (of those issued)", "bar",
      coupons.map(function (r) { return r.template + " (" + fmtPct.format(r.redeemed / Math.max(r.issued, 1)) + " redeemed)"; }),
      ["redeemed", "expired", "outstanding"].map(function (k, i) { return series(coupons, k, i, { stack: "s" }); }),
      { indexAxis: "y", scales: { x: { stacked: true, beginAtZero: true, title: { display: true, text: "coupons" } }, y: { stacked: true } } });
  }

  var sharers = rows("top_sharers");
  if (sharers.length) {
    chart("sharers", "Top sharers by attributed signups", "bar", sharers.map(function (r) { return r.user; }),
      ["signups", "first_purchases", "reached"].map(function (k, i) { return series(sharers, k, i); }),
      { indexAxis: "y", scales: { x: { beginAtZero: true, title: { display: true, text: "users" } } } });
  }
  var groups = rows("groups");
  if (groups.length) {
    chart("groups", "Group buys by opening day (completed, expired, open)", "bar", groups.map(function (r) { return r.day; }),
      ["completed", "expired", "open"].map(function (k, i) { return series(groups, k, i, { stack: "s" }); }),
      { scales: { x: { stacked: true }, y: { stacked: true, title: { display: true, text: "groups" } } },
        interaction: { mode: "index", intersect: false } });
    chart("completion", "Group-buy completion rate (completed ÷ decided)", "line", groups.map(function (r) { return r.day; }),
      [series(groups, "completion_rate", 3)], axes("rate", function (v) { return fmtPct.format(v); }));
  }
  // Each experiment's comparisons: the difference from the control with
  // its 95 % interval (percentage points), the rates in the tooltip.
  rows("experiments").forEach(function (x, i) {
    var rate = {};
    x.variants.forEach(function (v) { rate[v.variant] = v; });
    var labels = x.comparisons.map(function (c) { return c.variant + " vs " + c.control; });
    if (!labels.length) { return; }
    var pp = function (v) { return v * 100; };
    var srm = x.srm_p_value < 0.001 ? " — SAMPLE RATIO MISMATCH (p " + x.srm_p_value.toExponential(1) + "): do not read" : "";
    chart("experiment-" + i, x.experiment + " · " + x.label + ": difference from " + x.comparisons[0].control +
      " with its 95 % interval" + srm, "bar", labels,
      [{ label: "95 % interval", data: x.comparisons.map(function (c) { return [pp(c.ci_low), pp(c.ci_high)]; }),
         backgroundColor: palette[0] + "66", borderColor: palette[0], borderWidth: 1 },
       { label: "difference", type: "line", showLine: false, pointRadius: 5, data: x.comparisons.map(function (c) { return pp(c.diff); }),
         borderColor: palette[1], backgroundColor: palette[1] }],
      { indexAxis: "y",
        scales: { x: { title: { display: true, text: "percentage points" } } },
        plugins: { tooltip: { callbacks: { afterBody: function (items) {
          var c = x.comparisons[items[0].dataIndex];
          var v = rate[c.variant], k = rate[c.control];
          return [c.variant + ": " + v.converted + " of " + v.users + " (" + fmtPct.format(v.rate) + ")",
                  c.control + ": " + k.converted + " of " + k.users + " (" + fmtPct.format(k.rate) + ")",
                  "p = " + c.p_value.toFixed(4) + ", contaminated users " + x.contaminated_users];
        } } } } });
  });
  document.body.setAttribute("data-status", errors.length ? "failed" : "drawn");
})();

// Delivery health as a picture (contract §7, /v1/callback-reports/summary): a bar chart
// of delivered and failed callbacks per day or hour, a small trend for the list, and a
// profile's success rate and last failure. The SVG is drawn here; failed bars are
// hatched and every count is also text, so nothing relies on colour, and each chart has
// a table with the same numbers for screen readers (and for anyone who asks for it).

import { api } from "./api.js";
import { formatDate, h, nextId, replaceChildren } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export const RANGES = [
  { key: "24h", label: "Last 24 hours", bucket: "hour", span: 23 * HOUR, unit: "hour" },
  { key: "7d", label: "Last 7 days", bucket: "day", span: 6 * DAY, unit: "day" },
  { key: "30d", label: "Last 30 days", bucket: "day", span: 29 * DAY, unit: "day" },
];

/** Summary parameters for a range ending at `now` (the browser's clock). */
export function rangeParams(range, now = new Date()) {
  return {
    from: new Date(now.getTime() - range.span).toISOString(),
    to: now.toISOString(),
    bucket: range.bucket,
  };
}

/** An SVG element; attributes as strings, children nodes or text. */
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** The hatch that marks failed bars, as a <pattern> with a fresh id. */
function hatch() {
  const id = nextId("hatch");
  const pattern = s(
    "pattern",
    { id, width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" },
    s("rect", { width: 6, height: 6, class: "hatch-bg" }),
    s("line", { x1: 1.5, y1: 0, x2: 1.5, y2: 6, class: "hatch-line" }),
  );
  return { id, pattern };
}

/** A round top for the y axis: 1, 2, 5 × 10^n. */
function niceMax(value) {
  if (value <= 5) return Math.max(1, value);
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * power).find((top) => top >= value);
}

/** "Tue 24 Nov" / "14:00": a bucket's start in the account's zone. */
export function bucketLabel(start, bucket, timeZone, long = false) {
  const date = new Date(start);
  if (bucket === "hour") {
    const time = date.toLocaleTimeString("en-GB", { timeZone, hour: "2-digit", minute: "2-digit" });
    if (!long) return time;
    const day = date.toLocaleDateString("en-GB", { timeZone, weekday: "short", day: "numeric" });
    return `${day}, ${time}`;
  }
  return date.toLocaleDateString("en-GB", {
    timeZone,
    weekday: "short",
    day: "numeric",
    month: "short",
  });
}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

export function successRate({ delivered, failed }) {
  const total = delivered + failed;
  if (!total) return null;
  const rate = (100 * delivered) / total;
  // 99.96 % is not 100 %: round down near the top so a failure never disappears.
  return rate > 99.9 && failed ? "99.9%" : `${rate.toFixed(rate === 100 ? 0 : 1)}%`;
}

/** The chart's numbers as a table; hidden off-screen until someone asks to see it. */
function dataTable(summary, caption) {
  const unit = summary.bucket === "hour" ? "Hour" : "Day";
  return h(
    "table",
    { class: "chart-table" },
    h("caption", { text: caption }),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        [unit, "Delivered", "Failed"].map((text) => h("th", { scope: "col", text })),
      ),
    ),
    h(
      "tbody",
      {},
      summary.buckets.map((b) =>
        h(
          "tr",
          {},
          h("th", {
            scope: "row",
            text: bucketLabel(b.start, summary.bucket, summary.timezone, true),
          }),
          h("td", { text: b.delivered }),
          h("td", { text: b.failed }),
        ),
      ),
    ),
  );
}

function legend(hatchPattern) {
  const swatch = (cls, fill) =>
    s(
      "svg",
      { width: 14, height: 14, viewBox: "0 0 14 14", "aria-hidden": "true", focusable: "false" },
      fill ? s("defs", {}, fill.pattern) : null,
      s("rect", {
        width: 14,
        height: 14,
        class: cls,
        fill: fill ? `url(#${fill.id})` : null,
      }),
    );
  return h(
    "p",
    { class: "legend" },
    h("span", {}, swatch("bar-delivered"), " Delivered (solid)"),
    h("span", {}, swatch("bar-failed", hatchPattern), " Failed (hatched)"),
  );
}

/**
 * A bar chart of `summary` (the API's answer): per bucket a solid bar of delivered and a
 * hatched bar of failed callbacks, a labelled y axis, and the same numbers as a table.
 */
export function barChart(summary, caption) {
  const W = 720;
  const H = 240;
  const M = { top: 18, right: 8, bottom: 30, left: 44 };
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const buckets = summary.buckets;
  const n = Math.max(1, buckets.length);
  const top = niceMax(Math.max(0, ...buckets.map((b) => Math.max(b.delivered, b.failed))));
  const y = (v) => M.top + plotH - (v / top) * plotH;
  const slot = plotW / n;
  const barW = Math.max(1.5, Math.min(26, slot * 0.38));
  const fill = hatch();
  const withValues = n <= 10;
  const labelEvery = summary.bucket === "hour" ? 3 : n <= 10 ? 1 : Math.ceil(n / 10);

  const grid = [0, top / 2, top].map((v) =>
    s(
      "g",
      { class: "tick" },
      s("line", { x1: M.left, x2: W - M.right, y1: y(v), y2: y(v) }),
      s("text", { x: M.left - 6, y: y(v) + 4, "text-anchor": "end" }, Number(v.toFixed(1))),
    ),
  );
  const groups = buckets.map((b, i) => {
    const x0 = M.left + i * slot + (slot - 2 * barW) / 2;
    const label = bucketLabel(b.start, summary.bucket, summary.timezone, true);
    const bar = (value, x, cls, extra = {}) =>
      s("rect", {
        x,
        y: y(value),
        width: barW,
        height: Math.max(0, y(0) - y(value)),
        class: cls,
        ...extra,
      });
    const value = (v, x) =>
      withValues && v > 0
        ? s("text", { x: x + barW / 2, y: y(v) - 4, "text-anchor": "middle", class: "value" }, v)
        : null;
    return s(
      "g",
      {
        class: "bar-group",
        "data-start": b.start,
        "data-delivered": b.delivered,
        "data-failed": b.failed,
      },
      s("title", {}, `${label}: ${b.delivered} delivered, ${b.failed} failed`),
      bar(b.delivered, x0, "bar-delivered"),
      bar(b.failed, x0 + barW, "bar-failed", { fill: `url(#${fill.id})` }),
      value(b.delivered, x0),
      value(b.failed, x0 + barW),
      i % labelEvery === 0
        ? s(
            "text",
            { x: M.left + (i + 0.5) * slot, y: H - 10, "text-anchor": "middle", class: "x-label" },
            bucketLabel(b.start, summary.bucket, summary.timezone),
          )
        : null,
    );
  });
  const svg = s(
    "svg",
    {
      class: "chart",
      viewBox: `0 0 ${W} ${H}`,
      "aria-hidden": "true",
      focusable: "false",
      preserveAspectRatio: "xMidYMid meet",
    },
    s("defs", {}, fill.pattern),
    grid,
    s("line", { class: "axis", x1: M.left, x2: W - M.right, y1: y(0), y2: y(0) }),
    groups,
  );
  const table = dataTable(summary, caption);
  table.classList.add("visually-hidden");
  const toggle = h("button", {
    type: "button",
    class: "button small secondary",
    "aria-expanded": "false",
    text: "Show as a table",
    onclick: () => {
      const shown = table.classList.toggle("visually-hidden") === false;
      toggle.setAttribute("aria-expanded", String(shown));
      toggle.textContent = shown ? "Hide the table" : "Show as a table";
    },
  });
  return h(
    "figure",
    { class: "chart-figure" },
    svg,
    h("figcaption", {}, legend(hatch()), toggle),
    table,
  );
}

/** A tiny trend of the last 24 hours for the list: delivered up, failed (hatched) down. */
export function sparkline(summary) {
  const W = 96;
  const H = 24;
  const mid = 15;
  const buckets = summary.buckets;
  const n = Math.max(1, buckets.length);
  const top = Math.max(1, ...buckets.map((b) => Math.max(b.delivered, b.failed)));
  const w = W / n;
  const fill = hatch();
  return s(
    "svg",
    {
      class: "sparkline",
      viewBox: `0 0 ${W} ${H}`,
      width: W,
      height: H,
      "aria-hidden": "true",
      focusable: "false",
    },
    s("defs", {}, fill.pattern),
    s("line", { class: "axis", x1: 0, x2: W, y1: mid, y2: mid }),
    buckets.map((b, i) => [
      b.delivered
        ? s("rect", {
            class: "bar-delivered",
            x: i * w + 0.5,
            width: Math.max(1, w - 1),
            y: mid - (b.delivered / top) * (mid - 1),
            height: (b.delivered / top) * (mid - 1),
          })
        : null,
      b.failed
        ? s("rect", {
            class: "bar-failed",
            fill: `url(#${fill.id})`,
            x: i * w + 0.5,
            width: Math.max(1, w - 1),
            y: mid,
            height: Math.max(2, (b.failed / top) * (H - mid)),
          })
        : null,
    ]),
  );
}

/** The list's "Last 24 h" cell: counts as text, the trend beside them. */
export async function fillTrendCell(cell, profile, now = new Date()) {
  try {
    const summary = await api.summary({ ...rangeParams(RANGES[0], now), profile_id: profile.id });
    const { delivered, failed } = summary.totals;
    replaceChildren(
      cell,
      h(
        "span",
        { class: "trend" },
        sparkline(summary),
        h(
          "span",
          { class: "trend-text" },
          h("span", { class: "count ok", text: `✓ ${delivered} delivered` }),
          h("span", { class: `count ${failed ? "danger" : ""}`, text: `✗ ${failed} failed` }),
        ),
      ),
    );
  } catch {
    replaceChildren(cell, h("span", { class: "hint", text: "—" }));
  }
}

function lastFailureText(delivery, profileId) {
  if (!delivery) return [h("span", { text: "No failed callbacks recorded." })];
  const reason = [delivery.http_status ? `HTTP ${delivery.http_status}` : null, delivery.error]
    .filter(Boolean)
    .join(": ");
  return [
    "Last failure: ",
    h("time", {
      datetime: delivery.last_attempted_at,
      text: formatDate(delivery.last_attempted_at),
    }),
    ` — ${reason || "no reason recorded"}`,
    ` (${plural(delivery.attempt, "attempt")}, ${delivery.event}). `,
    h("a", {
      href: `#/profiles/${encodeURIComponent(profileId)}/deliveries`,
      text: "See the delivery log",
    }),
  ];
}

/** A profile's delivery health: range buttons, totals, success rate, chart, last failure. */
export function profileHealth(profile, now = () => new Date()) {
  const body = h("div", { class: "health-body", "aria-live": "polite", "aria-busy": "true" });
  const failure = h("p", { class: "last-failure" });
  let current = RANGES[1];
  const buttons = RANGES.map((range) =>
    h("button", {
      type: "button",
      class: "button small secondary",
      "aria-pressed": String(range === current),
      text: range.label,
      onclick: () => {
        current = range;
        for (const [i, b] of buttons.entries()) {
          b.setAttribute("aria-pressed", String(RANGES[i] === current));
        }
        load();
      },
    }),
  );

  async function load() {
    body.setAttribute("aria-busy", "true");
    const range = current;
    try {
      const summary = await api.summary({ ...rangeParams(range, now()), profile_id: profile.id });
      if (range !== current) return;
      const { delivered, failed } = summary.totals;
      const rate = successRate(summary.totals);
      const period = `${range.label.toLowerCase()} (${summary.timezone})`;
      const caption = `Delivered and failed callbacks per ${range.unit}, ${period}`;
      replaceChildren(
        body,
        h(
          "dl",
          { class: "stats" },
          h(
            "div",
            {},
            h("dt", { text: "Delivered" }),
            h("dd", { class: "delivered", text: delivered }),
          ),
          h("div", {}, h("dt", { text: "Failed" }), h("dd", { class: "failed", text: failed })),
          h(
            "div",
            {},
            h("dt", { text: "Success rate" }),
            h("dd", { class: "rate", text: rate ?? "— (no callbacks)" }),
          ),
        ),
        barChart(summary, caption),
      );
    } catch (error) {
      replaceChildren(body, h("p", { class: "notice error", text: error.message }));
    } finally {
      body.setAttribute("aria-busy", "false");
    }
  }

  async function loadFailure() {
    try {
      const page = await api.listDeliveries({ profile_id: profile.id, status: "failed", limit: 1 });
      replaceChildren(failure, lastFailureText((page.items || [])[0], profile.id));
    } catch (error) {
      replaceChildren(failure, h("span", { text: `Last failure unknown: ${error.message}` }));
    }
  }

  load();
  loadFailure();
  return h(
    "section",
    { class: "section health", "aria-labelledby": "health-title" },
    h("h2", { id: "health-title", text: "Delivery health" }),
    h("div", { class: "range-buttons", role: "group", "aria-label": "Period" }, buttons),
    body,
    failure,
  );
}

// The delivery log of one profile (contract §7): its latest callbacks with status and
// attempts, each one's attempts on demand, a redeliver button, and Recover: every
// callback of a time range (failed only, or all) delivered again, with its progress.

import { api } from "./api.js";
import {
  announce,
  clearFieldErrors,
  field,
  formatDate,
  h,
  replaceChildren,
  setFieldError,
} from "./dom.js";
import { cursorPager, PAGE_SIZE } from "./pager.js";

const RECOVERY_POLL_MS = 1000;

/** "2026-11-24T10:00" (a datetime-local value, the browser's zone) as ISO 8601 UTC. */
function isoOf(local) {
  if (!local) return null;
  const moment = new Date(local);
  return Number.isNaN(moment.getTime()) ? local : moment.toISOString();
}

function progressText(recovery) {
  const counted = `${recovery.done} of ${recovery.total} callbacks`;
  return recovery.status === "done"
    ? `Recovery done: ${counted} sent to delivery again.`
    : `Recovering: ${counted} sent to delivery so far…`;
}

/** The Recover box: a range and failed/all; on submit, the progress until done. */
function recoverBox(profileId) {
  const since = field("Recover from", h("input", { type: "datetime-local", required: true }), {
    field: "since",
    hint: "Callbacks whose first attempt is at or after this time (your time zone).",
  });
  const until = field("Recover until", h("input", { type: "datetime-local" }), {
    field: "until",
    hint: "Up to, not including, this time. Empty: until now.",
  });
  const which = field(
    "Callbacks to recover",
    h(
      "select",
      {},
      h("option", { value: "failed", text: "Failed only" }),
      h("option", { value: "all", text: "All (delivered ones too)" }),
    ),
    { field: "status" },
  );
  const progress = h("p", { class: "recovery-progress", role: "status", hidden: true });
  const submit = h("button", { type: "submit", class: "button primary", text: "Recover" });
  const form = h(
    "form",
    { class: "recover-form", novalidate: true, "aria-labelledby": "recover-title" },
    since.wrap,
    until.wrap,
    which.wrap,
    h("div", { class: "actions" }, submit),
  );
  const inputs = { since: since.input, until: until.input, status: which.input };

  async function follow(recovery) {
    let current = recovery;
    progress.hidden = false;
    progress.textContent = progressText(current);
    while (current.status !== "done" && progress.isConnected) {
      await new Promise((resolve) => window.setTimeout(resolve, RECOVERY_POLL_MS));
      try {
        current = await api.getRecovery(recovery.id);
      } catch (error) {
        progress.textContent = `Progress unavailable: ${error.message}`;
        return;
      }
      progress.textContent = progressText(current);
    }
    submit.disabled = false;
    if (current.status === "done") announce(progressText(current), "info", false);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    submit.disabled = true;
    const body = { since: isoOf(since.input.value), status: which.input.value };
    if (until.input.value) body.until = isoOf(until.input.value);
    if (!body.since) {
      setFieldError(since.input, "Choose where the range starts.");
      submit.disabled = false;
      return;
    }
    let started;
    try {
      started = await api.recover(profileId, body);
    } catch (error) {
      for (const { field: path, message } of error.errors) {
        const input = inputs[path];
        if (input) setFieldError(input, message);
      }
      if (!error.errors.some((e) => inputs[e.field])) {
        progress.hidden = false;
        progress.textContent = `Recovery not started: ${error.message}`;
      }
      announce("Recovery not started.", "error");
      submit.disabled = false;
      return;
    }
    announce(`Recovery of ${started.total} callbacks started.`);
    await follow(started);
  });

  return h(
    "section",
    { class: "section recover", "aria-labelledby": "recover-title" },
    h("h2", { id: "recover-title", text: "Recover" }),
    h("p", {
      class: "hint",
      text: "Deliver the callbacks of a time range again, paced so fresh callbacks keep their speed.",
    }),
    form,
    progress,
  );
}

const deliveryId = (row) => row.delivery_id || row.id;
const attemptCount = (row) =>
  row.attempts_count ??
  row.attempt ??
  (Array.isArray(row.attempts) ? row.attempts.length : row.attempts);
const lastAt = (row) => row.last_attempted_at || row.attempted_at || row.updated_at;

function statusBadge(status) {
  const kind = status === "delivered" ? "ok" : status === "failed" ? "danger" : "muted";
  return h("span", { class: `badge ${kind}`, text: status || "unknown" });
}

function attemptsTable(delivery) {
  const attempts = Array.isArray(delivery.attempts) ? delivery.attempts : [];
  if (!attempts.length) return h("p", { class: "hint", text: "No attempts recorded." });
  return h(
    "table",
    { class: "attempts" },
    h("caption", { text: "Attempts" }),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Attempt", "When", "Status", "HTTP", "Latency", "Error"].map((t) =>
          h("th", { scope: "col", text: t }),
        ),
      ),
    ),
    h(
      "tbody",
      {},
      attempts.map((a) =>
        h(
          "tr",
          {},
          h("td", { "data-label": "Attempt", text: a.attempt }),
          h("td", { "data-label": "When", text: formatDate(a.attempted_at) }),
          h("td", { "data-label": "Status" }, statusBadge(a.status)),
          h("td", { "data-label": "HTTP", text: a.http_status ?? "—" }),
          h("td", {
            "data-label": "Latency",
            text: a.latency_ms == null ? "—" : `${Math.round(a.latency_ms)} ms`,
          }),
          h("td", { "data-label": "Error", text: a.error || "" }),
        ),
      ),
    ),
  );
}

function deliveryRow(row) {
  const id = deliveryId(row);
  const detailRow = h("tr", { class: "detail", hidden: true }, h("td", { colspan: 7 }));
  const toggle = h("button", {
    type: "button",
    class: "button small secondary",
    "aria-expanded": "false",
    "aria-label": `Attempts of ${id}`,
    text: "Attempts",
    onclick: async () => {
      const open = toggle.getAttribute("aria-expanded") === "true";
      toggle.setAttribute("aria-expanded", String(!open));
      detailRow.hidden = open;
      if (open) return;
      try {
        replaceChildren(detailRow.firstChild, attemptsTable(await api.getDelivery(id)));
      } catch (error) {
        replaceChildren(
          detailRow.firstChild,
          h("p", { class: "notice error", text: error.message }),
        );
      }
    },
  });
  const redeliver = h("button", {
    type: "button",
    class: "button small secondary",
    "aria-label": `Redeliver ${id}`,
    text: "Redeliver",
    disabled: row.retryable === false,
    title:
      row.retryable === false
        ? "The position of this event is unknown, so it cannot be delivered again."
        : null,
    onclick: async () => {
      redeliver.disabled = true;
      try {
        await api.redeliver(id);
        announce(`Redelivery of ${id} requested.`);
      } catch (error) {
        announce(`Redelivery failed: ${error.message}`, "error");
      } finally {
        redeliver.disabled = row.retryable === false;
      }
    },
  });
  return [
    h(
      "tr",
      {},
      h("td", { "data-label": "Delivery" }, h("code", { text: id })),
      h("td", { "data-label": "Event", text: row.event || "" }),
      h("td", { "data-label": "Status" }, statusBadge(row.status)),
      h("td", { "data-label": "Attempts", text: attemptCount(row) ?? "" }),
      h("td", { "data-label": "Last HTTP", text: row.http_status ?? "—" }),
      h("td", { "data-label": "Last attempt", text: formatDate(lastAt(row)) }),
      h("td", { "data-label": "Actions" }, h("span", { class: "row-actions" }, toggle, redeliver)),
    ),
    detailRow,
  ];
}

/** Render the delivery log of profile `profileId`. */
export async function renderDeliveries(root, profileId) {
  document.title = "Delivery log · Callback Profiles";
  const heading = h("h1", { tabindex: "-1", text: "Delivery log" });
  const results = h("section", { class: "results", "aria-live": "polite", "aria-busy": "true" });
  const pager = cursorPager(load);
  replaceChildren(
    root,
    h(
      "p",
      { class: "breadcrumb" },
      h("a", { href: "#/profiles", text: "Callback Profiles" }),
      " › ",
      h("a", { href: `#/profiles/${encodeURIComponent(profileId)}`, text: "Profile" }),
    ),
    heading,
    h("p", {}, "Latest callbacks of profile ", h("code", { text: profileId }), "."),
    recoverBox(profileId),
    results,
  );
  heading.focus();

  async function load() {
    let data;
    try {
      data = await api.listDeliveries({
        profile_id: profileId,
        limit: PAGE_SIZE,
        cursor: pager.cursor,
      });
    } catch (error) {
      const missing = error.status === 404 || error.status === 405;
      replaceChildren(
        results,
        h("p", {
          class: `notice ${missing ? "muted" : "error"}`,
          text: missing ? "Delivery log not available." : error.message,
        }),
      );
      results.setAttribute("aria-busy", "false");
      return;
    }
    const items = data.items || [];
    const headers = [
      "Delivery",
      "Event",
      "Status",
      "Attempts",
      "Last HTTP",
      "Last attempt",
      "Actions",
    ];
    replaceChildren(
      results,
      items.length
        ? h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              { class: "deliveries" },
              h("caption", { class: "visually-hidden", text: "Callbacks, newest first" }),
              h(
                "thead",
                {},
                h(
                  "tr",
                  {},
                  headers.map((t) => h("th", { scope: "col", text: t })),
                ),
              ),
              h("tbody", {}, items.map(deliveryRow)),
            ),
          )
        : h("p", { class: "summary", text: "No callbacks delivered for this profile yet." }),
      pager.nav(data.next_cursor),
    );
    results.setAttribute("aria-busy", "false");
  }

  await load();
}

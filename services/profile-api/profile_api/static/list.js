// The "Callback Profiles" list: filters (title, HTTP method, created date range),
// cursor pagination with a way back, and one row per profile with its copyable id and
// its delivered and failed callbacks of the last 24 hours.

import { api } from "./api.js";
import { announce, copyButton, field, formatDate, h, replaceChildren, urlHost } from "./dom.js";
import { fillTrendCell } from "./health.js";
import { cursorPager, PAGE_SIZE } from "./pager.js";

const METHODS = ["GET", "POST", "PUT", "DELETE"];

export const CHANNEL_TITLES = {
  default: "Default",
  sms: "SMS",
  email: "Email",
  whatsapp: "WhatsApp",
  chatbot: "Chatbot",
};

export const DISABLED_REASONS = {
  endpoint_gone: "the endpoint answered 410 Gone",
  failing: "it was disabled automatically after repeated failures",
};

/** Local calendar days to the inclusive instants the API compares against. */
function dayStart(day) {
  return day ? new Date(`${day}T00:00:00`).toISOString() : "";
}

function dayEnd(day) {
  return day ? new Date(`${day}T23:59:59.999`).toISOString() : "";
}

function filtersFrom(query) {
  return {
    title: query.get("title") || "",
    method: query.get("method") || "",
    from: query.get("from") || "",
    to: query.get("to") || "",
  };
}

function filterForm(filters) {
  const title = h("input", { type: "search", name: "title", value: filters.title });
  const method = h(
    "select",
    { name: "method" },
    h("option", { value: "", text: "Any method" }),
    METHODS.map((m) => h("option", { value: m, text: m, selected: m === filters.method })),
  );
  const from = h("input", { type: "date", name: "from", value: filters.from });
  const to = h("input", { type: "date", name: "to", value: filters.to });
  const form = h(
    "form",
    {
      class: "filters",
      role: "search",
      "aria-label": "Filter callback profiles",
      onsubmit: (event) => {
        event.preventDefault();
        const params = new URLSearchParams();
        for (const [name, input] of Object.entries({ title, method, from, to })) {
          if (input.value) params.set(name, input.value.trim());
        }
        const hash = `#/profiles${params.size ? `?${params}` : ""}`;
        if (window.location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
        else window.location.hash = hash;
      },
    },
    field("Title", title).wrap,
    field("HTTP method", method).wrap,
    field("Created from", from).wrap,
    field("Created to", to).wrap,
    h(
      "div",
      { class: "filter-actions" },
      h("button", { type: "submit", class: "button primary", text: "Search" }),
      h("a", { href: "#/profiles", class: "button secondary", text: "Reset" }),
    ),
  );
  return form;
}

function statusCell(profile) {
  if (profile.disabled_reason) {
    return h("span", {
      class: "badge danger",
      title: `Disabled: ${DISABLED_REASONS[profile.disabled_reason] || profile.disabled_reason}`,
      text:
        profile.disabled_reason === "endpoint_gone" ? "Disabled (410 Gone)" : "Disabled (failing)",
    });
  }
  return profile.enabled === false
    ? h("span", { class: "badge muted", text: "Disabled" })
    : h("span", { class: "badge ok", text: "Enabled" });
}

function profileRow(profile) {
  const cell = (label, ...content) => h("td", { "data-label": label }, ...content);
  return h(
    "tr",
    {},
    cell(
      "Title",
      h("a", {
        href: `#/profiles/${encodeURIComponent(profile.id)}`,
        class: "row-title",
        text: profile.title,
      }),
    ),
    cell("Channel", CHANNEL_TITLES[profile.channel] || profile.channel),
    cell("Method", h("span", { class: `method method-${profile.method}`, text: profile.method })),
    cell("URL host", h("span", { class: "host", text: urlHost(profile.url) })),
    cell(
      "Created",
      h("time", { datetime: profile.created_at, text: formatDate(profile.created_at) }),
    ),
    cell(
      "Profile ID",
      h(
        "span",
        { class: "id-cell" },
        h("code", { text: profile.id }),
        copyButton(profile.id, "profile ID"),
      ),
    ),
    cell("Status", statusCell(profile)),
    cell("Last 24 h", h("span", { class: "hint", text: "…" })),
    cell(
      "Deliveries",
      h("a", {
        href: `#/profiles/${encodeURIComponent(profile.id)}/deliveries`,
        class: "button small secondary",
        "aria-label": `Delivery log of ${profile.title}`,
        text: "Log",
      }),
    ),
  );
}

function profileTable(items) {
  const headers = [
    "Title",
    "Channel",
    "Method",
    "URL host",
    "Created",
    "Profile ID",
    "Status",
    "Last 24 h",
    "Deliveries",
  ];
  return h(
    "table",
    { class: "profiles" },
    h("caption", { class: "visually-hidden", text: "Callback profiles, newest first" }),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        headers.map((text) => h("th", { scope: "col", text })),
      ),
    ),
    h("tbody", {}, items.map(profileRow)),
  );
}

/** Render the list for the filters in the hash query; pages are walked with cursors. */
export async function renderList(root, query) {
  document.title = "Callback Profiles";
  const filters = filtersFrom(query);
  const pager = cursorPager(() => load().catch(showError));

  const results = h("section", {
    class: "results",
    "aria-labelledby": "results-title",
    "aria-busy": "true",
  });
  const heading = h("h1", { tabindex: "-1", text: "Callback Profiles" });
  replaceChildren(
    root,
    h(
      "div",
      { class: "page-head" },
      heading,
      h("a", { href: "#/profiles/new", class: "button primary", text: "Add New" }),
    ),
    filterForm(filters),
    results,
  );
  heading.focus();

  async function load() {
    results.setAttribute("aria-busy", "true");
    const data = await api.listProfiles({
      title: filters.title,
      method: filters.method,
      created_from: dayStart(filters.from),
      created_to: dayEnd(filters.to),
      limit: PAGE_SIZE,
      cursor: pager.cursor,
    });
    const items = data.items || [];
    const summary = items.length
      ? `Page ${pager.number}: ${items.length} profile${items.length === 1 ? "" : "s"}.`
      : "No callback profiles match these filters.";
    replaceChildren(
      results,
      h("h2", { id: "results-title", class: "visually-hidden", text: "Results" }),
      h("p", { class: "summary", text: summary }),
      items.length ? h("div", { class: "table-wrap" }, profileTable(items)) : null,
      pager.nav(data.next_cursor),
    );
    results.setAttribute("aria-busy", "false");
    announce(summary, "info", false);
    const now = new Date();
    await Promise.all(
      [...results.querySelectorAll("td[data-label='Last 24 h']")].map((td, i) =>
        fillTrendCell(td, items[i], now),
      ),
    );
  }

  function showError(error) {
    results.setAttribute("aria-busy", "false");
    replaceChildren(results, h("p", { class: "notice error", role: "alert", text: error.message }));
  }

  await load().catch(showError);
}

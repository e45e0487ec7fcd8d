// Building blocks of the profile form: key/value rows, switches, the variable picker
// and the Test result. Each returns plain elements plus the few functions the form needs.

import { announce, copyButton, h, nextId, replaceChildren } from "./dom.js";

/**
 * Key/value rows (headers, query parameters, form fields). `path` is the API field
 * ("headers"); an API error on "headers.X-Id" lands beside the value of row "X-Id".
 */
export function rowsEditor({ path, noun, rows, keyLabel = "Name", valueLabel = "Value" }) {
  const list = h("div", { class: "rows" });
  const error = h("p", { class: "field-error", id: nextId("rows-error"), hidden: true });
  const group = h(
    "div",
    { class: "rows-group", "data-field": path, "aria-describedby": error.id },
    list,
    error,
  );

  function renumber() {
    [...list.children].forEach((row, index) => {
      const n = index + 1;
      const [keyInput, valueInput] = row.querySelectorAll("input");
      row.querySelector(".key-label").textContent = `${noun} ${n} ${keyLabel.toLowerCase()}`;
      row.querySelector(".value-label").textContent = `${noun} ${n} ${valueLabel.toLowerCase()}`;
      row.querySelector(".remove").setAttribute("aria-label", `Remove ${noun.toLowerCase()} ${n}`);
      keyInput.dataset.row = String(n);
      valueInput.dataset.row = String(n);
    });
  }

  function addRow(key = "", value = "", focus = false) {
    const keyInput = h("input", { type: "text", class: "key", value: key, spellcheck: "false" });
    const valueInput = h("input", { type: "text", class: "value", value, spellcheck: "false" });
    valueInput.dataset.template = `${noun} value`;
    keyInput.id = nextId("row-key");
    valueInput.id = nextId("row-value");
    const rowError = h("p", { class: "field-error", id: `${valueInput.id}-error`, hidden: true });
    keyInput.setAttribute("aria-describedby", rowError.id);
    valueInput.setAttribute("aria-describedby", rowError.id);
    const row = h(
      "div",
      { class: "row" },
      h("label", { for: keyInput.id, class: "key-label" }),
      keyInput,
      h("label", { for: valueInput.id, class: "value-label" }),
      valueInput,
      h("button", {
        type: "button",
        class: "button small secondary remove",
        text: "Remove",
        onclick: () => {
          const next = row.nextElementSibling || row.previousElementSibling;
          row.remove();
          renumber();
          (next?.querySelector("input") || addButton).focus();
          group.dispatchEvent(new Event("input", { bubbles: true }));
        },
      }),
      rowError,
    );
    list.append(row);
    renumber();
    if (focus) keyInput.focus();
  }

  const addButton = h("button", {
    type: "button",
    class: "button small secondary",
    text: `Add ${noun.toLowerCase()}`,
    onclick: () => addRow("", "", true),
  });
  for (const [key, value] of Object.entries(rows || {})) addRow(key, value);
  group.append(addButton);

  return {
    el: group,
    /** The rows as an object; rows with an empty name are ignored. */
    collect() {
      const out = {};
      for (const row of list.children) {
        const [keyInput, valueInput] = row.querySelectorAll("input");
        const key = keyInput.value.trim();
        if (key) out[key] = valueInput.value;
      }
      return out;
    },
    /** The input an error on `<path>.<key>` belongs to. */
    inputFor(key) {
      for (const row of list.children) {
        const [keyInput, valueInput] = row.querySelectorAll("input");
        if (keyInput.value.trim() === key) return valueInput;
      }
      return null;
    },
  };
}

/** A checkbox shown as a switch; `onchange(checked)` shows or hides its section. */
export function toggleSwitch(labelText, checked, onchange, path = null) {
  const input = h("input", { type: "checkbox", role: "switch", checked, id: nextId("switch") });
  if (path) input.dataset.field = path;
  input.addEventListener("change", () => onchange(input.checked));
  const el = h("div", { class: "switch" }, input, h("label", { for: input.id, text: labelText }));
  return { el, input };
}

/**
 * The variable picker: the channel's variables from the catalog as buttons; a click
 * inserts `{{name}}` at the cursor of the template field focused last.
 */
export function variablePicker(form, fallbackField) {
  let lastField = null;
  form.addEventListener("focusin", (event) => {
    if (event.target.dataset?.template) lastField = event.target;
  });

  const search = h("input", { type: "search", id: nextId("var-search"), autocomplete: "off" });
  const list = h("ul", { class: "variables", "aria-label": "Variables" });
  const target = h("p", { class: "hint", "aria-live": "polite" });
  let variables = [];

  function describeTarget() {
    const field = lastField && lastField.isConnected ? lastField : fallbackField();
    target.textContent = field
      ? `Inserts into: ${field.dataset.template}.`
      : "Focus a template field first (URL, header, query parameter or body).";
  }

  function insert(name) {
    const field =
      lastField && lastField.isConnected && !lastField.closest("[hidden]")
        ? lastField
        : fallbackField();
    if (!field) {
      announce("Focus a template field first.", "error");
      return;
    }
    const text = `{{${name}}}`;
    const start = field.selectionStart ?? field.value.length;
    const end = field.selectionEnd ?? start;
    field.setRangeText(text, start, end, "end");
    field.dispatchEvent(new Event("input", { bubbles: true }));
    field.focus();
    lastField = field;
    announce(`Inserted ${text} into ${field.dataset.template}.`);
  }

  function render() {
    const wanted = search.value.trim().toLowerCase();
    const shown = variables.filter(
      (v) =>
        !wanted ||
        v.name.toLowerCase().includes(wanted) ||
        (v.description || "").toLowerCase().includes(wanted),
    );
    replaceChildren(
      list,
      shown.map((v) =>
        h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              class: "variable",
              "aria-label": `Insert {{${v.name}}}: ${v.description || v.name}`,
              onclick: () => insert(v.name),
            },
            h("code", { text: `{{${v.name}}}` }),
            h("span", { class: "var-desc", text: v.description || "" }),
            v.example !== undefined && v.example !== null
              ? h("span", {
                  class: "var-example",
                  text: `e.g. ${typeof v.example === "string" ? v.example : JSON.stringify(v.example)}`,
                })
              : null,
          ),
        ),
      ),
      shown.length ? null : h("li", { class: "hint", text: "No variable matches." }),
    );
  }
  search.addEventListener("input", render);

  const el = h(
    "aside",
    { class: "picker card", "aria-labelledby": "picker-title" },
    h("h2", { id: "picker-title", text: "Variables" }),
    h("p", {
      class: "hint",
      text: "Click a variable to insert it at the cursor of the last template field you were in.",
    }),
    h("label", { for: search.id, text: "Find variable" }),
    search,
    target,
    list,
  );
  form.addEventListener("focusin", describeTarget);

  return {
    el,
    setVariables(next) {
      variables = next;
      render();
      describeTarget();
    },
  };
}

function headerList(headers) {
  const entries = Object.entries(headers || {});
  if (!entries.length) return h("p", { class: "hint", text: "No headers." });
  return h(
    "dl",
    { class: "header-list" },
    entries.map(([name, value]) => [h("dt", { text: name }), h("dd", { text: String(value) })]),
  );
}

function bodyBlock(body) {
  if (body === null || body === undefined || body === "")
    return h("p", { class: "hint", text: "No body." });
  return h("pre", { class: "code", tabindex: "0" }, h("code", { text: String(body) }));
}

/** The Test call's answer: the request sent, then the response or the error. */
const ms = (value) => (value === null || value === undefined ? "?" : `${Math.round(value)} ms`);

export function testResult(result) {
  const request = result.request;
  const response = result.response;
  const verdict = result.delivered
    ? `Delivered: ${response?.status} in ${ms(response?.latency_ms)}.`
    : `Not delivered: ${result.error || (response ? `the endpoint answered ${response.status}` : "no response")}.`;
  return h(
    "div",
    { class: "test-result" },
    h("p", { class: `notice ${result.delivered ? "ok" : "error"}`, text: verdict }),
    !request
      ? h("p", { class: "hint", text: "No request was sent: it could not be built." })
      : h(
          "details",
          { open: true },
          h("summary", { text: "Request sent" }),
          h(
            "p",
            {},
            h("strong", { text: request.method || "" }),
            " ",
            h("code", { class: "wrap", text: request.url || "" }),
            " ",
            request.url ? copyButton(request.url, "request URL") : null,
          ),
          headerList(request.headers),
          bodyBlock(request.body),
        ),
    response
      ? h(
          "details",
          { open: true },
          h("summary", { text: `Response: ${response.status}` }),
          h("p", { text: `Latency: ${ms(response.latency_ms)}` }),
          headerList(response.headers),
          bodyBlock(response.body),
        )
      : null,
    result.error ? h("p", { class: "field-error", text: `Error: ${result.error}` }) : null,
  );
}

/** A select of [value, label] pairs with `value` chosen. */
export const select = (options, value) =>
  h(
    "select",
    {},
    options.map(([v, label]) => h("option", { value: v, text: label, selected: v === value })),
  );

/** A fieldset of checkboxes; its error slot sits under the group. */
export function checkboxGroup(legend, path, items, checked, { disabled = false, note = "" } = {}) {
  const error = h("p", { class: "field-error", id: nextId("group-error"), hidden: true });
  const set = h(
    "fieldset",
    { class: "checks", "data-field": path, "aria-describedby": error.id, disabled },
    h("legend", { text: legend }),
    note ? h("p", { class: "hint", text: note }) : null,
    h(
      "div",
      { class: items.length > 8 ? "check-list many" : "check-list" },
      items.map(([value, label, hint]) => {
        const input = h("input", {
          type: "checkbox",
          value,
          checked: checked.includes(value),
          id: nextId("chk"),
        });
        return h(
          "div",
          { class: "check" },
          input,
          h(
            "label",
            { for: input.id },
            h("span", { text: label }),
            hint ? h("span", { class: "hint", text: ` ${hint}` }) : null,
          ),
        );
      }),
    ),
    error,
  );
  return { el: set, values: () => [...set.querySelectorAll("input:checked")].map((i) => i.value) };
}

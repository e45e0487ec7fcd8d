// Building blocks of the profile form: the row editor (and its key/value rows), switches,
// the variable picker and the Test result. Each returns plain elements plus the few
// functions the form needs.

import { announce, copyButton, h, nextId, replaceChildren } from "./dom.js";

/**
 * Editable rows with **Add <noun>** and **Remove** (headers, form fields, filters).
 * `renderRow(item)` builds one row from an item of `items` (undefined for a row the user
 * adds) and returns `{ cells, controls, number(n) }` plus anything its caller reads back:
 * `cells` are the row's labels and controls in order, `controls` its inputs (the first
 * takes focus, all are described by the row's error slot, whose id is the last control's
 * id + "-error"), and `number(n)` relabels it as row n. `errorSlot` adds a slot under the
 * rows for errors on the list itself. Removing a row renumbers the rest, focuses the
 * neighbour's first control (or Add) and fires `input` on the group.
 */
export function rowEditor({
  path,
  noun,
  items,
  renderRow,
  listClass = "rows",
  rowClass = "row",
  errorSlot = false,
}) {
  const list = h("div", { class: listClass });
  const error = errorSlot
    ? h("p", { class: "field-error", id: nextId("rows-error"), hidden: true })
    : null;
  const group = h(
    "div",
    { class: "rows-group", "data-field": path, "aria-describedby": error?.id },
    list,
    error,
  );
  const entries = []; // { el, row } in the order shown

  function renumber() {
    entries.forEach(({ el, row }, index) => {
      const n = index + 1;
      row.number(n);
      el.querySelector(".remove").setAttribute("aria-label", `Remove ${noun.toLowerCase()} ${n}`);
    });
  }

  function remove(entry) {
    const at = entries.indexOf(entry);
    const neighbour = entries[at + 1] || entries[at - 1];
    entries.splice(at, 1);
    entry.el.remove();
    renumber();
    (neighbour?.row.controls[0] || addButton).focus();
    group.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function addRow(item, focus = false) {
    const row = renderRow(item);
    const rowError = h("p", {
      class: "field-error",
      id: `${row.controls[row.controls.length - 1].id}-error`,
      hidden: true,
    });
    for (const control of row.controls) control.setAttribute("aria-describedby", rowError.id);
    const entry = { row };
    entry.el = h(
      "div",
      { class: rowClass },
      row.cells,
      h("button", {
        type: "button",
        class: "button small secondary remove",
        text: "Remove",
        onclick: () => remove(entry),
      }),
      rowError,
    );
    entries.push(entry);
    list.append(entry.el);
    renumber();
    if (focus) row.controls[0].focus();
  }

  const addButton = h("button", {
    type: "button",
    class: "button small secondary",
    text: `Add ${noun.toLowerCase()}`,
    onclick: () => addRow(undefined, true),
  });
  for (const item of items) addRow(item);
  group.append(addButton);

  return { el: group, rows: () => entries.map((entry) => entry.row) };
}

/**
 * Key/value rows (headers, query parameters, form fields). `path` is the API field
 * ("headers"); an API error on "headers.X-Id" lands beside the value of row "X-Id".
 */
export function rowsEditor({ path, noun, rows, keyLabel = "Name", valueLabel = "Value" }) {
  function renderRow([key, value] = ["", ""]) {
    const keyInput = h("input", { type: "text", class: "key", value: key, spellcheck: "false" });
    const valueInput = h("input", { type: "text", class: "value", value, spellcheck: "false" });
    valueInput.dataset.template = `${noun} value`;
    keyInput.id = nextId("row-key");
    valueInput.id = nextId("row-value");
    const keyCaption = h("label", { for: keyInput.id, class: "key-label" });
    const valueCaption = h("label", { for: valueInput.id, class: "value-label" });
    return {
      cells: [keyCaption, keyInput, valueCaption, valueInput],
      controls: [keyInput, valueInput],
      keyInput,
      valueInput,
      number(n) {
        keyCaption.textContent = `${noun} ${n} ${keyLabel.toLowerCase()}`;
        valueCaption.textContent = `${noun} ${n} ${valueLabel.toLowerCase()}`;
        keyInput.dataset.row = String(n);
        valueInput.dataset.row = String(n);
      },
    };
  }

  const editor = rowEditor({
    path,
    noun,
    items: Object.entries(rows || {}),
    renderRow,
    errorSlot: true,
  });

  return {
    el: editor.el,
    /** The rows as an object; rows with an empty name are ignored. */
    collect() {
      const out = {};
      for (const { keyInput, valueInput } of editor.rows()) {
        const key = keyInput.value.trim();
        if (key) out[key] = valueInput.value;
      }
      return out;
    },
    /** The input an error on `<path>.<key>` belongs to. */
    inputFor(key) {
      for (const { keyInput, valueInput } of editor.rows()) {
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

// The filters of a profile (contract §3b): rows of variable, operator and values. An
// event is delivered only when every row holds. Each row's controls carry the API's
// field paths ("filters.1.variable", "filters.1.in"), so a 422 lands beside them.

import { h, nextId, replaceChildren } from "./dom.js";

const OPERATORS = [
  ["in", "is one of"],
  ["not_in", "is none of"],
  ["equals", "equals"],
  ["exists", "is present"],
  ["missing", "is absent or empty"],
];

function operatorOf(filter) {
  if (filter.exists === true) return "exists";
  if (filter.exists === false) return "missing";
  for (const name of ["in", "not_in", "equals"]) if (filter[name] !== undefined) return name;
  return "in";
}

function valuesText(filter) {
  const listed = filter.in || filter.not_in;
  if (listed) return listed.join(", ");
  return filter.equals ?? "";
}

/**
 * The filters editor: `filters` as stored; `setVariables(variables)` refreshes every
 * row's choice of variable (the channel's catalog for the chosen events).
 */
export function filtersEditor(filters) {
  const list = h("div", { class: "rows filters" });
  let variables = [];
  const group = h("div", { class: "rows-group", "data-field": "filters" }, list);

  function variableOptions(select, chosen) {
    const names = variables.map((v) => v.name);
    if (chosen && !names.includes(chosen)) names.unshift(chosen); // shown until changed
    replaceChildren(
      select,
      names.map((n) => h("option", { value: n, text: n, selected: n === chosen })),
    );
    if (chosen) select.value = chosen;
  }

  function renumber() {
    [...list.children].forEach((row, index) => {
      const n = index + 1;
      const [variable, operator, values] = row.querySelectorAll("select, input");
      variable.dataset.field = `filters.${index}.variable`;
      operator.dataset.field = `filters.${index}`;
      const op = operator.value;
      values.dataset.field = `filters.${index}.${op === "not_in" || op === "equals" ? op : "in"}`;
      row.querySelector(".variable-label").textContent = `Filter ${n} variable`;
      row.querySelector(".operator-label").textContent = `Filter ${n} condition`;
      row.querySelector(".values-label").textContent = `Filter ${n} values`;
      row.querySelector(".remove").setAttribute("aria-label", `Remove filter ${n}`);
    });
  }

  function addRow(filter = {}, focus = false) {
    const variable = h("select", { id: nextId("filter-variable") });
    const operator = h(
      "select",
      { id: nextId("filter-operator") },
      OPERATORS.map(([value, text]) => h("option", { value, text })),
    );
    operator.value = operatorOf(filter);
    const values = h("input", {
      type: "text",
      id: nextId("filter-values"),
      value: valuesText(filter),
      spellcheck: "false",
      placeholder: "failed, undelivered",
    });
    const rowError = h("p", { class: "field-error", id: `${values.id}-error`, hidden: true });
    for (const control of [variable, operator, values])
      control.setAttribute("aria-describedby", rowError.id);
    variableOptions(variable, filter.variable || variables[0]?.name || "");
    const showValues = () => {
      values.hidden = operator.value === "exists" || operator.value === "missing";
      row.querySelector(".values-label").hidden = values.hidden;
      renumber();
    };
    operator.addEventListener("change", showValues);
    const row = h(
      "div",
      { class: "row filter-row" },
      h("label", { for: variable.id, class: "variable-label" }),
      variable,
      h("label", { for: operator.id, class: "operator-label" }),
      operator,
      h("label", { for: values.id, class: "values-label" }),
      values,
      h("button", {
        type: "button",
        class: "button small secondary remove",
        text: "Remove",
        onclick: () => {
          const next = row.nextElementSibling || row.previousElementSibling;
          row.remove();
          renumber();
          (next?.querySelector("select") || addButton).focus();
          group.dispatchEvent(new Event("input", { bubbles: true }));
        },
      }),
      rowError,
    );
    list.append(row);
    showValues();
    if (focus) variable.focus();
  }

  const addButton = h("button", {
    type: "button",
    class: "button small secondary",
    text: "Add filter",
    onclick: () => addRow({}, true),
  });
  for (const filter of filters || []) addRow(filter);
  group.append(addButton);

  return {
    el: group,
    setVariables(next) {
      variables = next;
      for (const row of list.children) {
        const select = row.querySelector("select");
        variableOptions(select, select.value);
      }
    },
    /** The rows as API filters; values are comma-separated in the input. */
    collect() {
      return [...list.children].map((row) => {
        const [variable, operator, values] = row.querySelectorAll("select, input");
        const items = values.value
          .split(",")
          .map((v) => v.trim())
          .filter(Boolean);
        const op = operator.value;
        if (op === "exists") return { variable: variable.value, exists: true };
        if (op === "missing") return { variable: variable.value, exists: false };
        if (op === "equals") return { variable: variable.value, equals: values.value.trim() };
        return { variable: variable.value, [op]: items };
      });
    },
  };
}

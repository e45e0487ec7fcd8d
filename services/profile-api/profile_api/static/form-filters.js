// The filters of a profile (contract §3b): rows of variable, operator and values. An
// event is delivered only when every row holds. Each row's controls carry the API's
// field paths ("filters.1.variable", "filters.1.in"), so a 422 lands beside them.

import { h, nextId, replaceChildren } from "./dom.js";
import { rowEditor } from "./form-parts.js";

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
  let variables = [];

  function variableOptions(select, chosen) {
    const names = variables.map((v) => v.name);
    if (chosen && !names.includes(chosen)) names.unshift(chosen); // shown until changed
    replaceChildren(
      select,
      names.map((n) => h("option", { value: n, text: n, selected: n === chosen })),
    );
    if (chosen) select.value = chosen;
  }

  function renderRow(filter = {}) {
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
    variableOptions(variable, filter.variable || variables[0]?.name || "");
    const variableCaption = h("label", { for: variable.id, class: "variable-label" });
    const operatorCaption = h("label", { for: operator.id, class: "operator-label" });
    const valuesCaption = h("label", { for: values.id, class: "values-label" });
    let shownAs = 0; // the row's number, kept for relabelling when the condition changes

    function number(n) {
      shownAs = n;
      const index = n - 1;
      variable.dataset.field = `filters.${index}.variable`;
      operator.dataset.field = `filters.${index}`;
      const op = operator.value;
      values.dataset.field = `filters.${index}.${op === "not_in" || op === "equals" ? op : "in"}`;
      variableCaption.textContent = `Filter ${n} variable`;
      operatorCaption.textContent = `Filter ${n} condition`;
      valuesCaption.textContent = `Filter ${n} values`;
    }

    // "is present" and "is absent or empty" take no values.
    function showValues() {
      values.hidden = operator.value === "exists" || operator.value === "missing";
      valuesCaption.hidden = values.hidden;
    }
    showValues();
    operator.addEventListener("change", () => {
      showValues();
      number(shownAs);
    });

    return {
      cells: [variableCaption, variable, operatorCaption, operator, valuesCaption, values],
      controls: [variable, operator, values],
      variable,
      operator,
      values,
      number,
    };
  }

  const editor = rowEditor({
    path: "filters",
    noun: "Filter",
    items: filters || [],
    renderRow,
    listClass: "rows filters",
    rowClass: "row filter-row",
  });

  return {
    el: editor.el,
    setVariables(next) {
      variables = next;
      for (const { variable } of editor.rows()) variableOptions(variable, variable.value);
    },
    /** The rows as API filters; values are comma-separated in the input. */
    collect() {
      return editor.rows().map(({ variable, operator, values }) => {
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

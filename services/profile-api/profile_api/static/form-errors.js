// Problem bodies on the form: each `errors[].field` (a dotted path such as "body",
// "headers.X-Id", "encryption.key") is put beside its input, and a summary at the top
// lists every error with a link to its field.

import { clearFieldErrors, h, replaceChildren, setFieldError } from "./dom.js";

/**
 * `editors` maps row-editor fields ("headers") to their editors, so an error on
 * "headers.X-Id" lands beside the value of the row named X-Id.
 */
export function errorReporter(form, summary, editors) {
  function inputFor(path) {
    const [head, ...rest] = path.split(".");
    if (editors[head] && rest.length) {
      return editors[head].inputFor(rest.join(".")) || form.querySelector(`[data-field="${head}"]`);
    }
    // The closest enclosing field: "required_options.variables.1" → "required_options.variables".
    let probe = path;
    while (probe) {
      const found = [...form.querySelectorAll("[data-field]")].find(
        (el) => el.dataset.field === probe,
      );
      if (found) return found;
      probe = probe.includes(".") ? probe.slice(0, probe.lastIndexOf(".")) : "";
    }
    return null;
  }

  function clear() {
    clearFieldErrors(form);
    summary.hidden = true;
  }

  /** Put each problem `errors[].field` beside its input; list them all in the summary. */
  function show(error) {
    clearFieldErrors(form);
    const items = [];
    const problems = error.errors.length ? error.errors : [{ field: "", message: error.message }];
    for (const { field: path = "", message } of problems) {
      const input = inputFor(path);
      if (input && !input.closest("[hidden]")) setFieldError(input, message);
      const label = path ? `${path}: ${message}` : message;
      items.push(
        h(
          "li",
          {},
          input
            ? h("a", {
                href: "#",
                text: label,
                onclick: (e) => {
                  e.preventDefault();
                  input.focus();
                },
              })
            : h("span", { text: label }),
        ),
      );
    }
    replaceChildren(
      summary,
      h("h2", { text: error.status === 422 ? "Please fix these fields" : "The request failed" }),
      h("ul", {}, items),
    );
    summary.hidden = false;
    summary.focus();
  }

  return { show, clear };
}

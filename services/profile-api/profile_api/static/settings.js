// Settings → Notifications (contract §7): the callback report email. Turn it on, pick
// daily, weekly or monthly, edit the recipients, choose the time zone its periods are
// counted in, see when the next one is due, and send one now and watch it go out.

import { api } from "./api.js";
import { announce, field, formatDate, h, nextId, replaceChildren, setFieldError } from "./dom.js";
import { errorReporter } from "./form-errors.js";
import { toggleSwitch } from "./form-parts.js";
import { dayLabel, nextReport, wallClock } from "./zoned.js";

// The API's own check (profile_api.routes.reports): one @, no spaces or brackets.
const EMAIL = /^[^@\s<>,;"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/;
const MAX_RECIPIENTS = 50;
const FREQUENCIES = [
  { value: "daily", label: "Daily", hint: "the previous day, sent after midnight" },
  { value: "weekly", label: "Weekly", hint: "Monday to Sunday, sent on Monday" },
  { value: "monthly", label: "Monthly", hint: "the previous month, sent on the 1st" },
];
// How long the page follows a send-now request before it stops asking.
const FOLLOW_MS = 90_000;
const FOLLOW_EVERY_MS = 1_000;

const browserZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

/** Saved settings that were never changed from the API's defaults. */
const untouched = (s) => !s.enabled && !s.recipients.length && s.timezone === "UTC";

export function recipientProblem(address, recipients) {
  if (!address) return "Type an email address first.";
  if (!EMAIL.test(address) || address.includes("..")) return `Not an email address: ${address}`;
  if (recipients.includes(address)) return `${address} is already a recipient.`;
  if (recipients.length >= MAX_RECIPIENTS) return `At most ${MAX_RECIPIENTS} recipients.`;
  return null;
}

/** Frequency radios in one fieldset whose error slot sits below them. */
function frequencyField(current) {
  const errorId = nextId("frequency-error");
  const radios = FREQUENCIES.map(({ value }) =>
    h("input", {
      type: "radio",
      name: "frequency",
      value,
      id: nextId("frequency"),
      checked: value === current,
      "aria-describedby": errorId,
    }),
  );
  radios[0].dataset.field = "frequency";
  const el = h(
    "fieldset",
    { class: "checks" },
    h("legend", { text: "Frequency" }),
    FREQUENCIES.map(({ label, hint }, i) =>
      h(
        "div",
        { class: "check" },
        radios[i],
        h("label", { for: radios[i].id }, label, h("span", { class: "hint", text: ` — ${hint}` })),
      ),
    ),
    h("p", { class: "field-error", id: errorId, hidden: true }),
  );
  return { el, value: () => radios.find((r) => r.checked)?.value || current };
}

/** The recipients: a list with a Remove button each, and an address field to add one. */
function recipientsField(initial) {
  const recipients = [...initial];
  const input = h("input", {
    type: "email",
    name: "recipient",
    autocomplete: "email",
    spellcheck: "false",
    placeholder: "ops@example.com",
  });
  const added = field("Add a recipient", input, {
    hint: `Who gets the report; up to ${MAX_RECIPIENTS} addresses.`,
    field: "recipients",
  });
  const list = h("ul", { class: "recipient-list", "aria-label": "Recipients" });
  const empty = h("p", { class: "hint", text: "No recipients yet." });

  function render() {
    replaceChildren(
      list,
      recipients.map((address, i) =>
        h(
          "li",
          {},
          h("span", { class: "address", text: address }),
          h("button", {
            type: "button",
            class: "button small secondary",
            "aria-label": `Remove ${address}`,
            text: "Remove",
            onclick: () => {
              recipients.splice(i, 1);
              render();
              const next = list.querySelectorAll("button")[Math.min(i, recipients.length - 1)];
              (next || input).focus();
              announce(`Removed ${address}.`);
            },
          }),
        ),
      ),
    );
    empty.hidden = recipients.length > 0;
  }

  /** Add what is typed; false (with the reason beside the field) if it is not valid. */
  function addTyped({ quietWhenEmpty = false } = {}) {
    const address = input.value.trim();
    if (!address && quietWhenEmpty) return true;
    added.error.hidden = true;
    input.removeAttribute("aria-invalid");
    const problem = recipientProblem(address, recipients);
    if (problem) {
      setFieldError(input, problem);
      input.focus();
      return false;
    }
    recipients.push(address);
    input.value = "";
    render();
    announce(`Added ${address}.`);
    return true;
  }

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault(); // Enter here adds the address; it does not save the form
      addTyped();
    }
  });
  const add = h("button", {
    type: "button",
    class: "button secondary",
    text: "Add",
    onclick: () => addTyped(),
  });
  render();
  const el = h(
    "div",
    { class: "recipients" },
    h("div", { class: "recipient-add" }, added.wrap, add),
    h("h3", { text: "Recipients" }),
    list,
    empty,
  );
  return { el, value: () => [...recipients], addTyped };
}

/** The time zone: a text field with every zone the API accepts as suggestions. */
function timezoneField(current, zones, preselected) {
  const listId = nextId("zones");
  const input = h("input", {
    type: "text",
    name: "timezone",
    list: listId,
    value: current,
    autocomplete: "off",
    spellcheck: "false",
  });
  const hint = preselected
    ? `Your browser's time zone (${current}) is preselected. Type to search, e.g. Kolkata.`
    : "Days, weeks and months are counted in this zone. Type to search, e.g. Kolkata.";
  const f = field("Time zone", input, { hint, field: "timezone" });
  f.wrap.append(
    h(
      "datalist",
      { id: listId },
      zones.map((zone) => h("option", { value: zone })),
    ),
  );
  return { el: f.wrap, value: () => input.value.trim() };
}

function nextReportText(saved, now = new Date()) {
  if (!saved.enabled || !saved.recipients.length) {
    return [h("span", { text: "Reports are off, so none is scheduled." })];
  }
  const { due, firstDay, lastDay } = nextReport(saved.frequency, saved.timezone, now);
  const wall = wallClock(due, saved.timezone);
  const hhmm = `${String(wall.hour).padStart(2, "0")}:${String(wall.minute).padStart(2, "0")}`;
  const covers =
    firstDay.day === lastDay.day && firstDay.month === lastDay.month
      ? dayLabel(firstDay)
      : `${dayLabel(firstDay)} to ${dayLabel(lastDay)}`;
  const dueDay = dayLabel({ year: wall.year, month: wall.month, day: wall.day });
  return [
    "Next report: ",
    h("time", {
      datetime: due.toISOString(),
      class: "due",
      text: `${dueDay}, ${hhmm} ${saved.timezone}`,
    }),
    ` (${formatDate(due.toISOString())} your time), a minute or so after the period closes; `,
    `it covers ${covers}.`,
  ];
}

/** "Send a report now": queue it, then follow the request until the reporter sent it. */
function sendNowSection(root, savedRef) {
  const result = h("p", { class: "send-result", role: "status", "aria-live": "polite" });
  const button = h("button", {
    type: "button",
    class: "button secondary",
    text: "Send a report now",
  });
  let following = 0;

  async function follow(requestId, to, startedAt, token) {
    while (token === following && root.isConnected) {
      let state;
      try {
        state = await api.sendNowStatus(requestId);
      } catch (error) {
        result.textContent = `Could not check the report: ${error.message}`;
        return;
      }
      if (state.status === "sent") {
        result.dataset.state = "sent";
        result.textContent = `Sent ${formatDate(state.sent_at)} to ${to}.`;
        return;
      }
      if (state.status === "retrying") {
        result.dataset.state = "retrying";
        result.textContent = "Not sent yet: the mail relay did not take it. It is tried again.";
      }
      if (Date.now() - startedAt > FOLLOW_MS) {
        result.textContent = "Queued. The report goes out as soon as the reporter is free.";
        return;
      }
      await new Promise((resolve) => window.setTimeout(resolve, FOLLOW_EVERY_MS));
    }
  }

  button.addEventListener("click", async () => {
    button.disabled = true;
    result.dataset.state = "queued";
    result.textContent = "Sending…";
    try {
      const accepted = await api.sendReportNow();
      const to = savedRef.current.recipients.join(", ");
      result.textContent = `Queued: the report of the period so far goes to ${to}.`;
      following += 1;
      await follow(accepted.request_id, to, Date.now(), following);
    } catch (error) {
      result.dataset.state = "error";
      result.textContent =
        error.status === 409 ? "Add a recipient and save first." : `Not sent: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  });

  return h(
    "section",
    { class: "section", "aria-labelledby": "send-now-title" },
    h("h2", { id: "send-now-title", text: "Send a report now" }),
    h("p", {
      class: "hint",
      text: "Emails the report of the current period so far to the saved recipients.",
    }),
    h("div", { class: "actions" }, button),
    result,
  );
}

/** Render Settings → Notifications. */
export async function renderNotificationSettings(root) {
  document.title = "Notifications · Settings · Callback Profiles";
  const [stored, zoneList] = await Promise.all([api.reportSettings(), api.timezones()]);
  const zones = zoneList.timezones || [];
  const preselect = untouched(stored) && zones.includes(browserZone());
  const savedRef = { current: stored };

  const enabled = toggleSwitch("Email callback reports", stored.enabled, () => {}, "enabled");
  const frequency = frequencyField(stored.frequency);
  const recipients = recipientsField(stored.recipients);
  const timezone = timezoneField(preselect ? browserZone() : stored.timezone, zones, preselect);
  const next = h("p", { class: "next-report" }, nextReportText(stored));
  const summary = h("div", {
    class: "error-summary",
    role: "alert",
    tabindex: "-1",
    hidden: true,
  });
  const save = h("button", { type: "submit", class: "button primary", text: "Save" });

  const form = h(
    "form",
    {
      class: "section settings-form",
      "aria-labelledby": "reports-title",
      novalidate: true,
    },
    h("h2", { id: "reports-title", text: "Callback reports" }),
    h("p", {
      class: "hint",
      text: "An email with the number of delivered and failed callbacks, in total and per profile.",
    }),
    summary,
    enabled.el,
    frequency.el,
    recipients.el,
    timezone.el,
    h("div", { class: "actions" }, save),
  );
  const errors = errorReporter(form, summary, {});

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.clear();
    if (!recipients.addTyped({ quietWhenEmpty: true })) return;
    const wanted = {
      enabled: enabled.input.checked,
      frequency: frequency.value(),
      recipients: recipients.value(),
      timezone: timezone.value(),
    };
    save.disabled = true;
    try {
      savedRef.current = await api.saveReportSettings(wanted);
      replaceChildren(next, nextReportText(savedRef.current));
      announce("Notification settings saved.");
    } catch (error) {
      errors.show(error);
    } finally {
      save.disabled = false;
    }
  });

  const heading = h("h1", { tabindex: "-1", text: "Notifications" });
  replaceChildren(
    root,
    h(
      "div",
      { class: "settings" },
      h("p", { class: "breadcrumb" }, "Settings › Notifications"),
      heading,
      form,
      h(
        "section",
        { class: "section", "aria-labelledby": "next-title" },
        h("h2", { id: "next-title", text: "Schedule" }),
        next,
      ),
      sendNowSection(root, savedRef),
    ),
  );
  heading.focus();
}

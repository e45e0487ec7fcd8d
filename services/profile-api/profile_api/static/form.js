// The Add / Edit page of a callback profile (issue 6, contract §3 and §3a): every
// field of the profile, the variable picker, Test, Save (with the API's field errors
// beside their inputs) and Delete.

import { api } from "./api.js";
import { announce, field, h, replaceChildren, setFlash, takeFlash } from "./dom.js";
import { errorReporter } from "./form-errors.js";
import { filtersEditor } from "./form-filters.js";
import {
  checkboxGroup,
  rowsEditor,
  select,
  testResult,
  toggleSwitch,
  variablePicker,
} from "./form-parts.js";
import {
  authenticationSection,
  BODY_TYPES,
  channelVariables,
  collectProfile,
  encryptionSection,
  NEW_PROFILE,
} from "./form-sections.js";
import { profileHealth } from "./health.js";
import { CHANNEL_TITLES } from "./list.js";
import { deleteBox, flashNotice, profileFacts } from "./profile-extras.js";

/** Render the form for profile `id` (edit) or a new one (id null). */
export async function renderProfileForm(root, id) {
  const [catalog, stored] = await Promise.all([api.catalog(), id ? api.getProfile(id) : null]);
  const profile = { ...NEW_PROFILE, ...(stored || {}) };
  const isNew = !stored;
  const flash = takeFlash();
  document.title = `${isNew ? "Add" : "Edit"} callback profile · Callback Profiles`;
  const channelOf = (name) =>
    catalog.find((c) => c.channel === name) || {
      channel: name,
      methods: ["GET", "POST"],
      events: [],
    };

  const form = h("form", {
    class: "profile-form",
    novalidate: true,
    "aria-labelledby": "form-title",
  });
  const summary = h("div", { class: "error-summary", role: "alert", tabindex: "-1", hidden: true });

  // Basics
  const title = field(
    "Title",
    h("input", { type: "text", value: profile.title, maxlength: 200, required: true }),
    {
      field: "title",
      hint: "You can search callback profiles by title.",
    },
  );
  const channel = field(
    "Select channel API",
    select(
      Object.entries(CHANNEL_TITLES).map(([v, t]) => [
        v,
        v === "default" ? "Default — no channel selected" : t,
      ]),
      profile.channel,
    ),
    { field: "channel", hint: isNew ? "" : "The channel of a saved profile cannot change." },
  );
  channel.input.disabled = !isNew;
  const eventsSlot = h("div", { class: "events-slot" });
  const method = field("HTTP method", h("select", {}), { field: "method" });
  const url = field(
    "URL endpoint",
    h("input", { type: "url", value: profile.url, spellcheck: "false", required: true }),
    {
      field: "url",
      hint: "Absolute http(s) URL; variables may stand in the path and query.",
    },
  );
  url.input.dataset.template = "URL";

  // Headers, query parameters, body
  const headers = rowsEditor({ path: "headers", noun: "Header", rows: profile.headers });
  const queryParams = rowsEditor({
    path: "query_params",
    noun: "Query parameter",
    rows: profile.query_params,
  });
  const bodyType = field("Body type", select(BODY_TYPES, profile.body_type || "json"), {
    field: "body_type",
  });
  const body = field("Body", h("textarea", { rows: 8, spellcheck: "false", class: "code" }), {
    field: "body",
    hint: "Use {{variable}} for dynamic values; the variable picker inserts them at the cursor.",
  });
  body.input.value = profile.body || "";
  body.input.dataset.template = "Body";
  const formFields = rowsEditor({
    path: "form_fields",
    noun: "Form field",
    rows: profile.form_fields || {},
  });
  const formFieldsBox = h(
    "div",
    { class: "form-fields" },
    h("h3", { text: "Form fields" }),
    formFields.el,
  );
  const bodySection = h(
    "fieldset",
    { class: "section" },
    h("legend", { text: "Body" }),
    bodyType.wrap,
    body.wrap,
    formFieldsBox,
  );

  let events = checkboxGroup("Events", "events", [], []);
  let required = checkboxGroup("Required variables", "required_options.variables", [], []);
  const requiredSlot = h("div", {});
  const requiredSwitch = toggleSwitch(
    "Enable callback required options",
    profile.required_options.enabled,
    (on) => {
      required.el.hidden = !on;
    },
    "required_options.enabled",
  );
  const filterRows = filtersEditor(profile.filters || []);
  const encryption = encryptionSection(profile.encryption);
  const authentication = authenticationSection(profile.authentication);

  // Delivery options
  const retryOn = field(
    "Retry on",
    select(
      [
        ["all_failures", "All failures (any non-2xx, timeout, connection error)"],
        ["transient_only", "Transient failures only (timeouts, connection errors, 408, 429, 5xx)"],
      ],
      profile.retry_on,
    ),
    { field: "retry_on" },
  );
  const maxAge = field(
    "Maximum age",
    h("input", {
      type: "text",
      value: profile.max_age || "",
      placeholder: "e.g. 2h",
      spellcheck: "false",
    }),
    {
      field: "max_age",
      hint: "No attempt starts after the event time plus this (90s, 30m, 2h, 1d). Empty: no limit.",
    },
  );
  const signingScheme = field(
    "Signature scheme",
    select(
      [
        ["v1", "v1: HMAC-SHA256 with the signing secret"],
        ["v1a", "v1a: ed25519, verified with the profile's public key"],
        ["both", "Both v1 and v1a"],
      ],
      (profile.signing || { scheme: "v1" }).scheme,
    ),
    {
      field: "signing.scheme",
      hint: "Standard Webhooks signatures in webhook-signature; the v1a public key is at GET /v1/callback-profiles/{id}/signing-key.",
    },
  );
  const enabled = toggleSwitch("Profile enabled", profile.enabled !== false, () => {}, "enabled");

  const picker = variablePicker(form, () =>
    bodySection.hidden || body.wrap.hidden ? url.input : body.input,
  );
  const testEvent = field("Event to simulate", h("select", {}));
  const testOutput = h("div", { class: "test-output", "aria-live": "polite" });
  let dirty = isNew;
  form.addEventListener("input", () => {
    dirty = true;
  });
  form.addEventListener("change", () => {
    dirty = true;
  });

  let initial = true; // the first render shows the stored choices; a channel change clears them

  function refresh() {
    const spec = channelOf(channel.input.value);
    const isDefault = spec.channel === "default";
    const chosen = initial ? profile.events : [];
    const selected = isDefault ? [] : chosen.filter((e) => spec.events.some((x) => x.name === e));
    events = checkboxGroup(
      "Events for the selected channel",
      "events",
      spec.events.map((e) => [e.name, e.name, e.description || ""]),
      selected,
      {
        disabled: isDefault,
        note: isDefault ? "Default receives every event with the envelope variables only." : "",
      },
    );
    events.el.addEventListener("change", () => refreshVariables());
    replaceChildren(eventsSlot, events.el);
    const current = method.input.value || profile.method;
    replaceChildren(
      method.input,
      spec.methods.map((m) => h("option", { value: m, text: m, selected: m === current })),
    );
    if (!spec.methods.includes(method.input.value)) method.input.value = spec.methods[0];
    refreshMethod();
    refreshVariables();
    initial = false;
  }

  function refreshMethod() {
    const m = method.input.value;
    bodySection.hidden = !(m === "POST" || m === "PUT");
    for (const option of bodyType.input.options)
      option.disabled = m === "PUT" && option.value !== "json";
    if (m === "PUT") bodyType.input.value = "json";
    const isForm = bodyType.input.value === "form";
    body.wrap.hidden = isForm;
    formFieldsBox.hidden = !isForm;
  }

  function refreshVariables() {
    const spec = channelOf(channel.input.value);
    const variables = channelVariables(spec, events.values());
    picker.setVariables(variables);
    filterRows.setVariables(variables);
    const keep = initial ? profile.required_options.variables || [] : required.values();
    required = checkboxGroup(
      "Variables that must be present and non-empty",
      "required_options.variables",
      variables.map((v) => [v.name, v.name, ""]),
      keep,
    );
    required.el.hidden = !requiredSwitch.input.checked;
    replaceChildren(requiredSlot, required.el);
    const names =
      spec.channel === "default"
        ? []
        : events.values().length
          ? events.values()
          : spec.events.map((e) => e.name);
    replaceChildren(
      testEvent.input,
      names.length
        ? names.map((n) => h("option", { value: n, text: n }))
        : h("option", { value: "", text: "Any (envelope variables only)" }),
    );
  }

  channel.input.addEventListener("change", refresh);
  method.input.addEventListener("change", refreshMethod);
  bodyType.input.addEventListener("change", refreshMethod);

  const collect = () =>
    collectProfile({
      title: title.input.value,
      channel: channel.input.value,
      events: events.values(),
      method: method.input.value,
      url: url.input.value.trim(),
      headers: headers.collect(),
      query_params: queryParams.collect(),
      body_type: bodyType.input.value,
      body: body.input.value,
      form_fields: formFields.collect(),
      encryption: encryption.collect(),
      authentication: authentication.collect(),
      required_options: { enabled: requiredSwitch.input.checked, variables: required.values() },
      filters: filterRows.collect(),
      enabled: enabled.input.checked,
      retry_on: retryOn.input.value,
      max_age: maxAge.input.value.trim() || null,
      signing: { scheme: signingScheme.input.value },
    });

  const errors = errorReporter(form, summary, {
    headers,
    query_params: queryParams,
    form_fields: formFields,
  });

  const saveButton = h("button", { type: "submit", class: "button primary", text: "Save" });
  const testButton = h("button", { type: "button", class: "button secondary", text: "Test" });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    saveButton.disabled = true;
    errors.clear();
    try {
      if (isNew) {
        const created = await api.createProfile(collect());
        setFlash({ secret: created.signing_secret, message: "Callback profile created." });
        window.location.hash = `#/profiles/${encodeURIComponent(created.id)}`;
      } else {
        await api.updateProfile(stored.id, collect());
        setFlash({ message: "Callback profile saved." });
        await renderProfileForm(root, stored.id);
      }
    } catch (error) {
      errors.show(error);
      announce("The profile was not saved.", "error");
    } finally {
      saveButton.disabled = false;
    }
  });

  testButton.addEventListener("click", async () => {
    testButton.disabled = true;
    errors.clear();
    replaceChildren(testOutput, h("p", { class: "hint", text: "Sending a test callback…" }));
    const options = testEvent.input.value ? { event: testEvent.input.value } : {};
    try {
      const result = dirty
        ? await api.testUnsaved(collect(), options)
        : await api.testSaved(stored.id, options);
      replaceChildren(testOutput, testResult(result));
      announce(
        result.delivered ? "Test callback delivered." : "Test callback not delivered.",
        result.delivered ? "info" : "error",
      );
    } catch (error) {
      replaceChildren(
        testOutput,
        h("p", { class: "notice error", text: `Test failed: ${error.message}` }),
      );
      if (error.errors.length) errors.show(error);
    } finally {
      testButton.disabled = false;
    }
  });

  replaceChildren(
    form,
    summary,
    h(
      "fieldset",
      { class: "section" },
      h("legend", { text: "Profile" }),
      title.wrap,
      channel.wrap,
      eventsSlot,
      method.wrap,
      url.wrap,
    ),
    h(
      "fieldset",
      { class: "section" },
      h("legend", { text: "Headers" }),
      h("p", { class: "hint", text: "Sent with every callback, e.g. an API key or Content-Type." }),
      headers.el,
    ),
    h("fieldset", { class: "section" }, h("legend", { text: "Query parameters" }), queryParams.el),
    bodySection,
    encryption.el,
    authentication.el,
    h(
      "fieldset",
      { class: "section" },
      h("legend", { text: "Callback required options" }),
      h("p", {
        class: "hint",
        text: "Only deliver events that carry every chosen variable (useful for chatbot endpoints).",
      }),
      requiredSwitch.el,
      requiredSlot,
    ),
    h(
      "fieldset",
      { class: "section" },
      h("legend", { text: "Filters" }),
      h("p", {
        class: "hint",
        text: "Only deliver events for which every filter holds, e.g. status is one of failed, undelivered. Values are comma-separated.",
      }),
      filterRows.el,
    ),
    h(
      "fieldset",
      { class: "section" },
      h("legend", { text: "Delivery" }),
      retryOn.wrap,
      maxAge.wrap,
      signingScheme.wrap,
      enabled.el,
    ),
    h(
      "section",
      { class: "section test-section", "aria-labelledby": "test-title" },
      h("h2", { id: "test-title", text: "Test" }),
      h("p", {
        class: "hint",
        text: "Sends one callback built exactly as the dispatcher would, with sample values.",
      }),
      testEvent.wrap,
      testOutput,
    ),
    h(
      "div",
      { class: "actions sticky" },
      testButton,
      saveButton,
      h("a", { href: "#/profiles", class: "button secondary", text: "Cancel" }),
    ),
  );
  refresh();

  const heading = h("h1", {
    id: "form-title",
    tabindex: "-1",
    text: isNew ? "Add callback profile" : `Edit: ${profile.title}`,
  });
  replaceChildren(
    root,
    h("p", { class: "breadcrumb" }, h("a", { href: "#/profiles", text: "Callback Profiles" })),
    heading,
    flash ? flashNotice(flash) : null,
    stored ? profileFacts(stored) : null,
    stored ? profileHealth(stored) : null,
    h("div", { class: "form-layout" }, form, picker.el),
    stored ? deleteBox(stored) : null,
  );
  heading.focus();
  if (flash) announce(flash.message);
}

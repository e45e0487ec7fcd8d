// The parts of the edit page around the form: the one-time notice after a save (with
// the signing secret after create), the profile's facts and why it is disabled, and
// the inline delete confirmation.

import { api } from "./api.js";
import { announce, copyButton, formatDate, h, replaceChildren } from "./dom.js";
import { DISABLED_REASONS } from "./list.js";

export function flashNotice(flash) {
  return h(
    "div",
    { class: "notice ok" },
    h("p", { text: flash.message }),
    flash.secret
      ? h(
          "p",
          {},
          "Signing secret (shown once; store it now): ",
          h("code", { class: "wrap", text: flash.secret }),
          " ",
          copyButton(flash.secret, "signing secret"),
        )
      : null,
  );
}

export function profileFacts(profile) {
  return h(
    "div",
    { class: "facts" },
    h(
      "p",
      {},
      "Profile ID: ",
      h("code", { text: profile.id }),
      " ",
      copyButton(profile.id, "profile ID"),
    ),
    h("p", {
      text: `Created ${formatDate(profile.created_at)} · updated ${formatDate(profile.updated_at)}`,
    }),
    h(
      "p",
      {},
      h("a", {
        href: `#/profiles/${encodeURIComponent(profile.id)}/deliveries`,
        text: "Delivery log",
      }),
    ),
    profile.disabled_reason
      ? h("p", {
          class: "notice error",
          role: "note",
          text: `This profile is disabled because ${DISABLED_REASONS[profile.disabled_reason] || profile.disabled_reason}${profile.disabled_at ? ` (${formatDate(profile.disabled_at)})` : ""}. Fix the endpoint, then save with "Profile enabled" on.`,
        })
      : null,
  );
}

export function deleteBox(profile) {
  const confirmBox = h("div", { class: "confirm", hidden: true });
  const ask = h("button", { type: "button", class: "button danger", text: "Delete profile" });
  const keep = h("button", { type: "button", class: "button secondary", text: "Keep it" });
  const confirm = h("button", {
    type: "button",
    class: "button danger",
    text: "Delete permanently",
  });
  ask.addEventListener("click", () => {
    confirmBox.hidden = false;
    ask.hidden = true;
    keep.focus();
  });
  keep.addEventListener("click", () => {
    confirmBox.hidden = true;
    ask.hidden = false;
    ask.focus();
  });
  confirm.addEventListener("click", async () => {
    try {
      await api.deleteProfile(profile.id);
      announce(`Deleted ${profile.title}.`);
      window.location.hash = "#/profiles";
    } catch (error) {
      announce(`Not deleted: ${error.message}`, "error");
    }
  });
  replaceChildren(
    confirmBox,
    h("p", {
      text: `Delete "${profile.title}"? Events that name this profile will no longer be delivered.`,
    }),
    confirm,
    " ",
    keep,
  );
  return h("section", { class: "danger-zone", "aria-label": "Delete" }, ask, confirmBox);
}

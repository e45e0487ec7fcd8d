// Paging through a listing the API pages with cursors (profiles, deliveries): Previous,
// the page number and Next under the table.

import { h } from "./dom.js";

/** Rows asked for per page, in every listing. */
export const PAGE_SIZE = 20;

/**
 * The pages of one listing. `cursor` fetches the page shown (null on the first) and
 * `number` is its 1-based number. Once that page is fetched, `nav(nextCursor)` records
 * where the next page starts (none: this is the last) and returns Previous / "Page n" /
 * Next; each moves one page and calls `show()` to fetch and draw it.
 */
export function cursorPager(show) {
  const cursors = [null]; // cursors[i] fetches page i; the first page has none
  let page = 0;

  function move(step) {
    page += step;
    show();
  }

  return {
    get cursor() {
      return cursors[page];
    },
    get number() {
      return page + 1;
    },
    nav(nextCursor) {
      if (nextCursor) cursors[page + 1] = nextCursor;
      else cursors.length = page + 1;
      return h(
        "nav",
        { class: "pager", "aria-label": "Pages" },
        h("button", {
          type: "button",
          class: "button secondary",
          text: "Previous",
          disabled: page === 0,
          onclick: () => move(-1),
        }),
        h("span", { text: `Page ${page + 1}` }),
        h("button", {
          type: "button",
          class: "button secondary",
          text: "Next",
          disabled: !nextCursor,
          onclick: () => move(1),
        }),
      );
    },
  };
}

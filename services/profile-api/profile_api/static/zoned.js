// Calendar arithmetic in a named IANA time zone (the account's report zone), with only
// Intl: local dates of an instant, the instant of a local midnight, and when the next
// scheduled report is due. The reporter's periods are whole local days, ISO weeks
// (Monday to Sunday) and calendar months; this mirrors them for display only.

const partsCache = new Map();

function formatter(timeZone) {
  if (!partsCache.has(timeZone)) {
    partsCache.set(
      timeZone,
      new Intl.DateTimeFormat("en-US", {
        timeZone,
        hourCycle: "h23",
        year: "numeric",
        month: "numeric",
        day: "numeric",
        hour: "numeric",
        minute: "numeric",
        second: "numeric",
      }),
    );
  }
  return partsCache.get(timeZone);
}

/** The wall-clock fields of `instant` (a Date) in `timeZone`. */
export function wallClock(instant, timeZone) {
  const out = {};
  for (const { type, value } of formatter(timeZone).formatToParts(instant)) {
    if (type !== "literal") out[type] = Number(value);
  }
  return out;
}

function offsetMs(instant, timeZone) {
  const w = wallClock(instant, timeZone);
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return asUtc - Math.floor(instant.getTime() / 1000) * 1000;
}

/** A local calendar day as {year, month, day}; months count from 1. */
export function localDay(instant, timeZone) {
  const { year, month, day } = wallClock(instant, timeZone);
  return { year, month, day };
}

/** The day `n` days after `day` (proleptic calendar; no zone involved). */
export function addDays(day, n) {
  const d = new Date(Date.UTC(day.year, day.month - 1, day.day + n));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
}

/** Monday = 0 … Sunday = 6, as the ISO week counts. */
function isoWeekday(day) {
  return (new Date(Date.UTC(day.year, day.month - 1, day.day)).getUTCDay() + 6) % 7;
}

/** The instant `day` begins in `timeZone` (where midnight is skipped: the first instant after). */
export function localMidnight(day, timeZone) {
  const guess = Date.UTC(day.year, day.month - 1, day.day);
  const first = guess - offsetMs(new Date(guess), timeZone);
  const second = guess - offsetMs(new Date(first), timeZone);
  return new Date(Math.max(first, second));
}

/**
 * The next scheduled report for `frequency` in `timeZone` at `now`: it covers the
 * current period and is due when the period closes. Returns {due, firstDay, lastDay}.
 */
export function nextReport(frequency, timeZone, now = new Date()) {
  const today = localDay(now, timeZone);
  let firstDay;
  let following;
  if (frequency === "daily") {
    firstDay = today;
    following = addDays(today, 1);
  } else if (frequency === "weekly") {
    firstDay = addDays(today, -isoWeekday(today));
    following = addDays(firstDay, 7);
  } else {
    firstDay = { ...today, day: 1 };
    following =
      today.month === 12
        ? { year: today.year + 1, month: 1, day: 1 }
        : { year: today.year, month: today.month + 1, day: 1 };
  }
  return { due: localMidnight(following, timeZone), firstDay, lastDay: addDays(following, -1) };
}

const DAY_PARTS = new Intl.DateTimeFormat("en-GB", {
  timeZone: "UTC",
  weekday: "short",
  day: "numeric",
  month: "short",
  year: "numeric",
});

/** "Mon 23 Nov 2026", as the report emails write a day, in every browser. */
export function dayLabel(day) {
  const parts = {};
  for (const { type, value } of DAY_PARTS.formatToParts(
    new Date(Date.UTC(day.year, day.month - 1, day.day)),
  )) {
    parts[type] = value;
  }
  return `${parts.weekday} ${parts.day} ${parts.month} ${parts.year}`;
}

// Formatting of numbers, money, durations and times for display.

const numberFormat = new Intl.NumberFormat(undefined);

export function fmtNumber(value) {
  return value === null || value === undefined ? '—' : numberFormat.format(value);
}

/** USD with enough digits for per-request costs ($0.000027) and plain totals ($12.40). */
export function fmtUsd(value) {
  if (value === null || value === undefined) return '—';
  if (value === 0) return '$0';
  const abs = Math.abs(value);
  if (abs >= 1) return `$${value.toFixed(2)}`;
  if (abs >= 0.01) return `$${value.toFixed(4)}`;
  return `$${Number(value.toPrecision(3))}`;
}

export function fmtMs(value) {
  if (value === null || value === undefined) return '—';
  if (value >= 10_000) return `${(value / 1000).toFixed(1)} s`;
  return `${value >= 100 ? Math.round(value) : Number(value.toFixed(1))} ms`;
}

export function fmtPercent(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return '—';
  return `${value >= 10 ? Math.round(value) : Number(value.toFixed(1))}%`;
}

const dateTime = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
});

/** An ISO timestamp as local date and time. */
export function fmtDate(value) {
  if (!value) return '—';
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : dateTime.format(date);
}

/** "3 min ago", "in 2 d", or the date when further than a month. */
export function fmtAgo(value) {
  if (!value) return '—';
  const seconds = (Date.now() - new Date(value).getTime()) / 1000;
  const abs = Math.abs(seconds);
  if (abs > 30 * 86400) return fmtDate(value);
  const [amount, unit] = abs < 60 ? [abs, 's'] : abs < 3600 ? [abs / 60, 'min']
    : abs < 86400 ? [abs / 3600, 'h'] : [abs / 86400, 'd'];
  const text = `${Math.round(amount)} ${unit}`;
  return seconds >= 0 ? `${text} ago` : `in ${text}`;
}

/** "YYYY-MM-DD" of a Date in UTC (the usage API's days are UTC days). */
export function utcDay(date) {
  return date.toISOString().slice(0, 10);
}

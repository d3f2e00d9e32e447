// Amounts as the API writes them (decimal strings, "20.0100000000") shown as a person reads them
// ("20.01"). Only string and BigInt arithmetic: an amount never goes through a float, so no digit
// is lost or invented.

const DECIMAL = /^([+-]?)(\d+)(?:\.(\d+))?$/;

function parts(text) {
  const found = DECIMAL.exec(String(text ?? "").trim());
  if (!found) return null;
  const whole = found[2].replace(/^0+(?=\d)/, "");
  const fraction = (found[3] || "").replace(/0+$/, "");
  const zero = /^0*$/.test(whole) && fraction === "";
  return { negative: found[1] === "-" && !zero, whole, fraction };
}

// `text` without trailing zeros, with at least `minDecimals` decimals; what is not a decimal
// string is shown as it came ("–" for none).
export function amount(text, minDecimals = 0) {
  if (text === null || text === undefined || text === "") return "–";
  const p = parts(text);
  if (!p) return String(text);
  const fraction = p.fraction.padEnd(minDecimals, "0");
  return `${p.negative ? "-" : ""}${p.whole}${fraction ? `.${fraction}` : ""}`;
}

// A sum of money in the quote asset (cost, P&L, fees, limits): at least 2 decimals.
export const quote = (text) => amount(text, 2);

// A price: every significant digit, at least 2 decimals.
export const price = (text) => amount(text, 2);

// A quantity of a coin: every significant digit, no padding.
export const quantity = (text) => amount(text, 0);

// -1, 0 or 1: the sign of a decimal string (0 for what is not one).
export function sign(text) {
  const p = parts(text);
  if (!p || (/^0*$/.test(p.whole) && p.fraction === "")) return 0;
  return p.negative ? -1 : 1;
}

// A positive amount with "+", as P&L is shown.
export function signedText(text, minDecimals = 2) {
  const shown = amount(text, minDecimals);
  return sign(text) > 0 ? `+${shown}` : shown;
}

function scaled(text) {
  const p = parts(text);
  if (!p) throw new Error(`not a decimal: ${text}`);
  const digits = BigInt(`${p.whole}${p.fraction}` || "0");
  return { units: p.negative ? -digits : digits, scale: p.fraction.length };
}

function unscaled(units, scale) {
  const negative = units < 0n;
  let digits = (negative ? -units : units).toString().padStart(scale + 1, "0");
  const whole = digits.slice(0, digits.length - scale);
  const fraction = digits.slice(digits.length - scale);
  digits = fraction ? `${whole}.${fraction}` : whole;
  return `${negative ? "-" : ""}${digits}`;
}

// The exact sum of decimal strings (what is not one is skipped), as a decimal string.
export function sum(values) {
  const terms = values.filter((v) => parts(v) !== null).map(scaled);
  const scale = Math.max(0, ...terms.map((t) => t.scale));
  const total = terms.reduce((acc, t) => acc + t.units * 10n ** BigInt(scale - t.scale), 0n);
  return amount(unscaled(total, scale));
}

// -text, exactly.
export function negate(text) {
  const p = parts(text);
  if (!p) return String(text);
  return amount(`${p.negative ? "" : "-"}${p.whole}.${p.fraction || "0"}`);
}

// A value of an event's data, shown: a decimal string without its trailing zeros, anything else as is.
export function shownValue(value) {
  return typeof value === "string" && /^[+-]?\d+\.\d+$/.test(value) ? amount(value) : value;
}

/**
 * Compile a Python `re` pattern into a JS RegExp with re.search semantics (unanchored).
 * Translated: a leading global flag group such as "(?i)" (i, m, s; a and u are no-ops here),
 * named groups "(?P<name>…)" and "(?P=name)", "\A" and "\Z", and a leading "]" inside a class.
 * Anything else Python-only (e.g. "(?x)", scoped flags, possessive quantifiers) makes the
 * pattern invalid here, which the loader reports instead of silently mismatching.
 * Known remaining difference: "\w", "\d" and "\b" are ASCII-only in JS but Unicode-aware in Python 3.
 */
export function compilePythonRegex(pattern: string): RegExp {
  let flags = "";
  let body = pattern;
  const lead = /^\(\?([a-zA-Z]+)\)/.exec(body);
  if (lead) {
    for (const f of lead[1]!) {
      if ("ims".includes(f)) flags += flags.includes(f) ? "" : f;
      else if (!"au".includes(f)) throw new SyntaxError(`Python flag (?${f}) is not supported`);
    }
    body = body.slice(lead[0].length);
  }
  return new RegExp(translate(body), flags);
}

function translate(p: string): string {
  let out = "";
  let inClass = false;
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === "\\") {
      const next = p[i + 1] ?? "";
      // \A and \Z are start/end of the whole string in Python, whatever the m flag says.
      if (!inClass && next === "A") out += "(?<![\\s\\S])";
      else if (!inClass && next === "Z") out += "(?![\\s\\S])";
      else out += c + next;
      i++;
    } else if (inClass) {
      if (c === "]") inClass = false;
      out += c;
    } else if (c === "[") {
      inClass = true;
      out += c;
      if (p[i + 1] === "^") out += p[++i];
      // Python reads "]" right after "[" or "[^" as a literal; JS would close an empty class.
      if (p[i + 1] === "]") {
        out += "\\]";
        i++;
      }
    } else if (p.startsWith("(?P<", i)) {
      out += "(?<";
      i += 3;
    } else if (p.startsWith("(?P=", i)) {
      const end = p.indexOf(")", i);
      if (end < 0) throw new SyntaxError("unterminated (?P=name)");
      out += `\\k<${p.slice(i + 4, end)}>`;
      i = end;
    } else out += c;
  }
  return out;
}

// Building the page without ever parsing data as HTML: every text goes in as textContent.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Replace what `node` holds with `children` (null and false are left out).
export function fill(node, ...children) {
  return append(clear(node), children);
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export function when(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  return new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19);
}

export function ms(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const value = seconds * 1000;
  return (value >= 10 ? value.toFixed(0) : value >= 1 ? value.toFixed(1) : value.toPrecision(2)) + " ms";
}

export function num(value) {
  return value === null || value === undefined ? "–" : Number(value).toLocaleString("en");
}

export function json(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

export function sessionHref(app, user, session) {
  const query = new URLSearchParams({ app, user, session });
  return "/session?" + query.toString();
}

// DOM shorthands shared by the pages' views: $ finds one element, el builds one.
// Nothing here knows about runs or analyses.

/** The first element matching a selector, under root (the document by default). */
export const $ = (selector, root = document) => root.querySelector(selector);

/**
 * A new element: props "class" and "text" set className and textContent, "data-*" and "aria-*"
 * become attributes, anything else is set as a property (type, title, colSpan...).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("data-") || k.startsWith("aria-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  node.append(...children);
  return node;
}

// Agent builder enhancements. Without JavaScript the intents stay an editable
// JSON textarea; with it they become rows that serialize back into that textarea.

const form = document.getElementById("agent-form");
const raw = document.getElementById("id_intents");
const editor = document.getElementById("intents-editor");
const rows = document.getElementById("intent-rows");
const rawBox = document.getElementById("intents-raw");

function addRow(intent = { name: "", description: "" }) {
  const index = rows.children.length + 1;
  const tr = document.createElement("tr");
  tr.innerHTML = `
    <td><input type="text" class="intent-name" maxlength="40" aria-label="Intent ${index} name"></td>
    <td><input type="text" class="intent-description" aria-label="Intent ${index} description"></td>
    <td><button type="button" class="button secondary small remove-intent" aria-label="Remove intent ${index}">Remove</button></td>`;
  tr.querySelector(".intent-name").value = intent.name ?? "";
  tr.querySelector(".intent-description").value = intent.description ?? "";
  rows.append(tr);
  return tr;
}

function serialize() {
  const intents = [...rows.querySelectorAll("tr")]
    .map((tr) => ({
      name: tr.querySelector(".intent-name").value.trim(),
      description: tr.querySelector(".intent-description").value.trim(),
    }))
    .filter((intent) => intent.name || intent.description);
  raw.value = JSON.stringify(intents, null, 2);
}

function setUpIntents() {
  let intents;
  try {
    intents = JSON.parse(raw.value);
  } catch {
    return; // Unparseable text stays in the textarea, with its error beside it.
  }
  if (!Array.isArray(intents) || intents.some((i) => typeof i !== "object" || i === null)) return;
  intents.forEach((intent) => addRow(intent));
  editor.hidden = false;
  // The textarea keeps its label and error for the server's message, but the rows edit it.
  raw.hidden = true;
  rawBox.querySelector("label").hidden = true;
  document.getElementById("add-intent").addEventListener("click", () => {
    addRow().querySelector(".intent-name").focus();
  });
  rows.addEventListener("click", (event) => {
    const button = event.target.closest(".remove-intent");
    if (!button) return;
    const tr = button.closest("tr");
    (tr.nextElementSibling ?? tr.previousElementSibling)?.querySelector("input")?.focus();
    tr.remove();
  });
  form.addEventListener("submit", serialize);
}

function setUpPersonas() {
  const personas = JSON.parse(document.getElementById("personas-data").textContent);
  const select = document.getElementById("persona");
  const prompt = document.getElementById("id_system_prompt");
  const greeting = document.getElementById("id_greeting");
  const count = document.getElementById("prompt-count");
  const updateCount = () => (count.textContent = prompt.value.length);
  prompt.addEventListener("input", updateCount);
  select.addEventListener("change", () => {
    const persona = personas[select.value];
    if (!persona) return;
    const edited = prompt.value.trim() && prompt.value !== prompt.defaultValue;
    if (edited && !confirm("Replace the current system prompt and greeting?")) {
      select.value = "";
      return;
    }
    prompt.value = persona.system_prompt;
    greeting.value = persona.greeting;
    updateCount();
  });
}

setUpIntents();
setUpPersonas();

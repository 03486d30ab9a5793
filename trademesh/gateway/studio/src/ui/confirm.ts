// Modal questions for actions that cannot be undone: a yes/no (confirmAction), and a yes/no
// that also asks why (confirmWithReason: the inspector records the reason of an operator's
// command or a cancel; "yes" stays disabled until one is typed).
import { h } from "./dom";

function ask(dialog: HTMLDialogElement, onYes: () => void = () => undefined): Promise<boolean> {
  document.body.append(dialog);
  return new Promise((resolve) => {
    // Escape closes the dialog with an empty returnValue: that is a "no".
    dialog.addEventListener("close", () => {
      const yes = dialog.returnValue === "yes";
      if (yes) onYes();
      resolve(yes);
      dialog.remove();
    });
    dialog.showModal();
  });
}

export function confirmAction(question: string, yes: string, no: string): Promise<boolean> {
  const yesButton = h("button", { id: "confirm-yes", class: "danger", value: "yes" }, yes);
  const noButton = h("button", { id: "confirm-no", value: "no", autofocus: true }, no);
  const dialog = h(
    "dialog",
    { id: "confirm", class: "confirm" },
    h("form", { method: "dialog" }, h("p", {}, question), h("menu", {}, noButton, yesButton)),
  );
  return ask(dialog);
}

/** The reason given, or null when the user said no. `reason` prefills the field. */
export async function confirmWithReason(
  question: string,
  yes: string,
  no: string,
  reason = "",
): Promise<string | null> {
  const input = h("input", {
    id: "confirm-reason",
    required: true,
    autocomplete: "off",
    placeholder: "why (recorded)",
    value: reason,
    autofocus: true,
  });
  const yesButton = h("button", { id: "confirm-yes", class: "danger", value: "yes" }, yes);
  // formnovalidate: "no" closes without a reason.
  const noButton = h("button", { id: "confirm-no", value: "no", formnovalidate: true }, no);
  const sync = (): void => {
    yesButton.disabled = input.value.trim() === "";
  };
  input.addEventListener("input", sync);
  sync();
  const dialog = h(
    "dialog",
    { id: "confirm", class: "confirm" },
    h(
      "form",
      { method: "dialog" },
      h("p", {}, question),
      h("label", { class: "reason" }, "Reason", input),
      h("menu", {}, noButton, yesButton),
    ),
  );
  let given = "";
  const confirmed = await ask(dialog, () => (given = input.value.trim()));
  return confirmed && given !== "" ? given : null;
}

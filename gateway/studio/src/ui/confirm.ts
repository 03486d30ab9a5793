// A modal yes/no question for actions that cannot be undone (cancel all orders).
import { h } from "./dom";

export function confirmAction(question: string, yes: string, no: string): Promise<boolean> {
  const yesButton = h("button", { id: "confirm-yes", class: "danger", value: "yes" }, yes);
  const noButton = h("button", { id: "confirm-no", value: "no", autofocus: true }, no);
  const dialog = h(
    "dialog",
    { id: "confirm", class: "confirm" },
    h("form", { method: "dialog" }, h("p", {}, question), h("menu", {}, noButton, yesButton)),
  );
  document.body.append(dialog);
  return new Promise((resolve) => {
    // Escape closes the dialog with an empty returnValue: that is a "no".
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "yes");
      dialog.remove();
    });
    dialog.showModal();
  });
}

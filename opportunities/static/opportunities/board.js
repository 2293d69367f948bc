/* The pipeline board (opportunities/board.py): drag a card to another column to move it.
 *
 * Without this script every card's "move to" form posts and the page comes back.
 * With it, a drop (or the form, for keyboard users) posts the same form asking for
 * JSON, then the board is read again in place: moved, refused as changed meanwhile,
 * or not allowed, the board shows the cards as they are now, with the message.
 * A move to "Lost" first asks why in a dialog (optional; Cancel or Escape moves nothing);
 * the reason goes in the card form's own "lost_reason" field, as typed there without the script.
 */
(function () {
  "use strict";

  function board() {
    return document.getElementById("pipeline-board");
  }

  function announce(text) {
    var status = document.getElementById("board-status");
    if (status && text) {
      status.textContent = text;
    }
  }

  // Read the board again (same filters) and put its columns in place of these, messages included
  // (the filters stay as they are: their widgets keep their scripts).
  function refresh(message, focusCard) {
    return fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        return response.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("pipeline-columns");
        var columns = document.getElementById("pipeline-columns");
        if (!fresh || !columns) {
          window.location.reload();
          return;
        }
        columns.innerHTML = fresh.innerHTML;
        var oldList = document.querySelector(".messagelist");
        if (oldList) {
          oldList.remove();
        }
        var newList = doc.querySelector(".messagelist");
        var content = document.getElementById("content");
        if (newList && content) {
          content.parentNode.insertBefore(document.importNode(newList, true), content);
        }
        announce(message);
        if (focusCard) {
          var select = document.getElementById("move-" + focusCard);
          if (select) {
            select.focus();
          }
        }
        document.dispatchEvent(new CustomEvent("pipeline-board:refreshed"));
      })
      .catch(function () {
        window.location.reload();
      });
  }

  function post(form, focus) {
    var card = form.querySelector("input[name=opportunity]").value;
    board().setAttribute("aria-busy", "true");
    return fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-Requested-With": "XMLHttpRequest" },
    })
      .then(function (response) {
        return response.json().catch(function () {
          return { success: false, message: "" };
        });
      })
      .then(function (answer) {
        return refresh(answer.message, focus ? card : null);
      })
      .catch(function () {
        window.location.reload();
      })
      .finally(function () {
        board().removeAttribute("aria-busy");
      });
  }

  // Run ``then`` once the user said why the card's deal was lost (or left it empty); not at all if they
  // cancel. Asked only for a move to "Lost" of a deal not lost yet, with no reason typed in its form.
  function askWhyLost(form, then, focus) {
    var card = form.closest(".card");
    var field = form.querySelector("input[name=lost_reason]");
    var stage = form.querySelector("select[name=stage]").value;
    var dialog = document.getElementById("lost-reason-dialog");
    if (
      stage !== "lost" ||
      !card ||
      card.dataset.stage === "lost" ||
      !field ||
      field.value.trim() ||
      !dialog ||
      typeof dialog.showModal !== "function"
    ) {
      then();
      return;
    }
    var input = document.getElementById("lost-reason-dialog-input");
    var title = card.querySelector("h3 a");
    dialog.querySelector(".deal-title").textContent = title ? title.textContent : "";
    input.value = "";
    dialog.returnValue = "";
    dialog.addEventListener("close", function closed() {
      dialog.removeEventListener("close", closed);
      if (dialog.returnValue === "lost") {
        field.value = input.value.trim();
        then();
        return;
      }
      form.querySelector("select[name=stage]").value = card.dataset.stage;
      announce(dialog.dataset.cancelled);
      var select = form.querySelector("select[name=stage]");
      if (focus && select) {
        select.focus();
      }
    });
    dialog.showModal();
    input.focus();
  }

  function moveCard(card, stage) {
    var form = card.querySelector("form.move");
    if (!form || card.dataset.stage === stage) {
      return;
    }
    form.querySelector("select[name=stage]").value = stage;
    askWhyLost(
      form,
      function () {
        post(form, false);
      },
      false
    );
  }

  var dragged = null;

  function columnOf(target) {
    return target && target.closest ? target.closest("#pipeline-columns .column") : null;
  }

  function clearTargets() {
    document.querySelectorAll("#pipeline-columns .drop-target").forEach(function (column) {
      column.classList.remove("drop-target");
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.matches && form.matches("#pipeline-board form.move")) {
      event.preventDefault();
      askWhyLost(
        form,
        function () {
          post(form, true);
        },
        true
      );
    }
  });

  document.addEventListener("dragstart", function (event) {
    var card = event.target.closest ? event.target.closest("#pipeline-board .card[draggable=true]") : null;
    if (!card) {
      return;
    }
    dragged = card;
    card.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.id);
  });

  document.addEventListener("dragend", function () {
    if (dragged) {
      dragged.classList.remove("dragging");
    }
    dragged = null;
    clearTargets();
  });

  document.addEventListener("dragover", function (event) {
    var column = columnOf(event.target);
    if (!column || !dragged) {
      return;
    }
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    if (!column.classList.contains("drop-target")) {
      clearTargets();
      column.classList.add("drop-target");
    }
  });

  document.addEventListener("drop", function (event) {
    var column = columnOf(event.target);
    if (!column) {
      return;
    }
    event.preventDefault();
    clearTargets();
    var card = dragged || document.getElementById(event.dataTransfer.getData("text/plain"));
    dragged = null;
    if (card) {
      card.classList.remove("dragging");
      moveCard(card, column.dataset.stage);
    }
  });
})();

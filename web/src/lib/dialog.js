/* dialog.js: the one form dialog of the 人员 and 账号 screens: a title, a form body, 确定 and
 * 取消; a failed submit shows its error in Chinese inside the form and keeps what was typed. */

import { $, esc, show } from './dom.js';
import { formError } from './i18n.js';

let submit = null;
let labels = {};

/** An error of the form itself (shown as it is), not of the API. */
export function localError(message) {
  const err = new Error(message);
  err.local = message;
  return err;
}

/** Close the dialog. */
export function closeDialog() {
  show('gm-form-dialog', false);
  submit = null;
}

/**
 * Open the dialog with a form body. onSubmit(form) returns a promise (null: no buttons, a
 * read-only view); fieldLabels name the API's fields in Chinese for its error messages.
 */
export function openDialog(title, body, onSubmit, button = '确定', fieldLabels = {}) {
  const form = $('gm-form');
  form.innerHTML =
    `<div class="gm-popover-head"><strong>${esc(title)}</strong>` +
    '<button class="gm-close" type="button" data-cancel aria-label="关闭">×</button></div>' +
    body +
    '<div class="gm-error" data-gm="form-error" hidden></div>' +
    (onSubmit
      ? `<div class="gm-row pp-buttons"><button type="submit" class="gm-btn gm-go" data-gm="submit">${esc(button)}</button>` +
        '<button type="button" class="gm-btn" data-cancel>取消</button></div>'
      : '');
  submit = onSubmit;
  labels = fieldLabels;
  show('gm-form-dialog', true);
  const first = form.querySelector('input:not([type=hidden]):not([type=radio]):not([type=checkbox]), select');
  if (first) first.focus();
  return form;
}

/** Wire the dialog once (submit, cancel, Escape); onChange(event) sees the form's changes. */
export function bindDialog(onChange) {
  const form = $('gm-form');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!submit) return;
    const button = form.querySelector('[data-gm=submit]');
    const error = form.querySelector('[data-gm=form-error]');
    show(error, false);
    if (button) button.disabled = true;
    try {
      await submit(form);
    } catch (err) {
      error.textContent = err.local || formError(err, labels);
      show(error, true);
    } finally {
      if (button) button.disabled = false;
    }
  });
  form.addEventListener('click', (e) => {
    if (e.target.closest('[data-cancel]')) closeDialog();
  });
  if (onChange) form.addEventListener('change', onChange);
  $('gm-form-dialog').addEventListener('keydown', (e) => {
    if (e.key === 'Escape') closeDialog();
  });
}

/** The markup of the dialog, for a screen's ui.html to leave out. */
export function mountDialog() {
  if ($('gm-form-dialog')) return;
  const el = document.createElement('div');
  el.id = 'gm-form-dialog';
  el.className = 'gm-dialog';
  el.hidden = true;
  el.innerHTML = '<form id="gm-form" class="gm-card gm-dialog-box pp-form" novalidate autocomplete="off"></form>';
  document.body.appendChild(el);
}

/* forms.js: the forms of the 人员 screen, in one dialog: replace (or name) a grid's leader,
 * add a person in a role, end a role, and a person's record with its edit form. Every change
 * asks why (the reason goes to the audit log with who made it). */

import { api } from '../lib/api.js';
import { bindDialog, closeDialog, localError, mountDialog, openDialog } from '../lib/dialog.js';
import { esc, show } from '../lib/dom.js';
import { beijingMidnight, todayBeijing } from '../lib/format.js';
import { formError } from '../lib/i18n.js';
import { personPicker } from '../lib/pickers.js';
import { personHtml } from './grid.js';

const LABELS = {
  name: '姓名',
  mobile_phone: '手机',
  work_phone: '办公电话',
  notes: '备注',
  reason: '原因',
  valid_from: '生效日期',
  valid_to: '结束日期',
  role: '职务',
  person_id: '人员',
};

/** The who-switch of the person section: an existing person, or a new one. */
export function bindForms() {
  mountDialog();
  bindDialog((e) => {
    if (e.target.name === 'who') {
      const form = e.target.form;
      show(form.querySelector('[data-who=existing]'), e.target.value === 'existing');
      show(form.querySelector('[data-who=new]'), e.target.value === 'new');
    }
  });
}

function open(title, body, onSubmit, button) {
  return openDialog(title, body, onSubmit, button, LABELS);
}

const close = closeDialog;

const WHO_HTML =
  '<fieldset class="pp-who"><legend>人员</legend>' +
  '<div class="pp-switch"><label class="gm-check"><input type="radio" name="who" value="existing" checked> 选择已有人员</label>' +
  '<label class="gm-check"><input type="radio" name="who" value="new" data-gm="who-new"> 登记新人员</label></div>' +
  '<div data-who="existing"><div id="pp-person-picker"></div></div>' +
  '<div data-who="new" hidden>' +
  '<label class="gm-field">姓名 <em>*</em><input name="name" maxlength="50" data-gm="new-name"></label>' +
  '<label class="gm-field">手机<input name="mobile_phone" inputmode="tel" maxlength="40" placeholder="如 138 0371 0001" data-gm="new-mobile"></label>' +
  '<label class="gm-field">办公电话（公开）<input name="work_phone" inputmode="tel" maxlength="40" placeholder="如 0371-6612 3456"></label>' +
  '<label class="gm-check pp-party"><input type="checkbox" name="party_member"> 党员</label></div></fieldset>';

const REASON_HTML =
  '<label class="gm-field">原因 <em>*</em><input name="reason" maxlength="500" placeholder="如：换届选举、工作调动" data-gm="reason"></label>';

function dateHtml(name, label, hint) {
  return `<label class="gm-field">${label}<input type="date" name="${name}" max="${esc(todayPlusYear())}" data-gm="${name}"><span class="gm-muted">${hint}</span></label>`;
}

function todayPlusYear() {
  const t = todayBeijing();
  return `${+t.slice(0, 4) + 1}${t.slice(4)}`;
}

/** The person part of a body: {person_id} or {person: {...}}; throws a local error. */
function whoOf(form, picker) {
  if (form.who.value === 'new') {
    const name = form.name.value.trim();
    if (!name) throw localError('请填写新人员的姓名。');
    const person = { name, party_member: form.party_member.checked };
    if (form.mobile_phone.value.trim()) person.mobile_phone = form.mobile_phone.value.trim();
    if (form.work_phone.value.trim()) person.work_phone = form.work_phone.value.trim();
    return { person };
  }
  if (!picker.value) throw localError('请先查找并选择一位人员，或改为登记新人员。');
  return { person_id: picker.value.id };
}

function reasonOf(form) {
  const reason = form.reason.value.trim();
  if (!reason) throw localError('请填写原因（将记入操作日志）。');
  return reason;
}

function dateOf(form, name) {
  const v = form[name] && form[name].value;
  return v ? beijingMidnight(v) : undefined;
}

/** 更换/指定 the grid's leader; done(result) after the change. */
export function replaceLeaderForm(data, done) {
  const g = data.grid;
  const role = data.leader_role ? data.leader_role.name_zh : '负责人';
  const now = data.leader
    ? `<p class="gm-muted">现任：<b>${esc(data.leader.person_name)}</b>，确定后其任职在生效时结束，新${esc(role)}同时上任。</p>`
    : `<p class="gm-muted">此网格目前没有${esc(role)}。</p>`;
  let picker = null;
  const form = open(
    `${data.leader ? '更换' : '指定'}${role} · ${g.name}`,
    now + WHO_HTML + dateHtml('valid_from', '生效日期', '留空为立即生效') + REASON_HTML,
    async (f) => {
      const body = { ...whoOf(f, picker), reason: reasonOf(f) };
      const from = dateOf(f, 'valid_from');
      if (from) body.valid_from = from;
      const res = await api(`/api/v1/grids/${g.id}/leader`, null, { method: 'PUT', body });
      close();
      done(res, `已更换${role}`);
    }
  );
  picker = personPicker(form.querySelector('#pp-person-picker'));
}

/** 添加人员: a role of this grid's level for an existing or a new person. */
export function addForm(data, roles, done) {
  const g = data.grid;
  const usable = roles.filter((r) => !r.levels.length || r.levels.indexOf(g.level) >= 0);
  const options = usable
    .map((r) => `<option value="${esc(r.code)}"${r.primary_for.indexOf(g.level) >= 0 ? ' data-leads="1"' : ''}>${esc(r.name_zh)}</option>`)
    .join('');
  let picker = null;
  const form = open(
    `添加人员 · ${g.name}`,
    `<label class="gm-field">职务 <em>*</em><select name="role" data-gm="role">${options}</select></label>` +
      WHO_HTML +
      dateHtml('valid_from', '任职日期', '留空为即日起') +
      REASON_HTML,
    async (f) => {
      const body = { role: f.role.value, ...whoOf(f, picker), reason: reasonOf(f) };
      const from = dateOf(f, 'valid_from');
      if (from) body.valid_from = from;
      const res = await api(`/api/v1/grids/${g.id}/assignments`, null, { method: 'POST', body });
      close();
      done(res, '已添加');
    }
  );
  // The leading role is taken through 更换 when the grid has a leader: start on another one.
  const select = form.querySelector('select[name=role]');
  const other = [...select.options].find((o) => !o.hasAttribute('data-leads'));
  if (data.leader && other) select.value = other.value;
  picker = personPicker(form.querySelector('#pp-person-picker'));
}

/** 结束任职 of one assignment. */
export function endForm(assignment, done) {
  open(
    `结束任职 · ${assignment.person_name}（${assignment.role_name}）`,
    dateHtml('valid_to', '结束日期', '留空为立即结束') + REASON_HTML,
    async (f) => {
      const body = { reason: reasonOf(f) };
      const to = dateOf(f, 'valid_to');
      if (to) body.valid_to = to;
      const res = await api(`/api/v1/assignments/${assignment.id}/end`, null, { method: 'POST', body });
      close();
      done(res, '已结束任职');
    },
    '结束任职'
  );
}

/** A person's record, with 修改 to edit name, phones, 党员 and notes. */
export async function personDialog(personId, changed) {
  const form = open('人员档案', '<div class="gm-loading">正在查询…</div>', null);
  let p;
  try {
    p = await api(`/api/v1/people/${personId}`, null, { cache: 'no-store' });
  } catch (err) {
    form.querySelector('.gm-loading').outerHTML = `<div class="gm-error">${esc(formError(err))}</div>`;
    return;
  }
  form.querySelector('.gm-loading').outerHTML =
    personHtml(p) + '<div class="gm-row"><button type="button" class="gm-btn" data-gm="edit-person">修改档案</button></div>';
  form.querySelector('[data-gm=edit-person]').addEventListener('click', () => editPerson(p, changed));
}

function editPerson(p, changed) {
  open(
    `修改档案 · ${p.name}`,
    `<label class="gm-field">姓名 <em>*</em><input name="name" maxlength="50" value="${esc(p.name)}"></label>` +
      `<label class="gm-field">手机<input name="mobile_phone" inputmode="tel" maxlength="40" value="${esc(p.mobile_phone || '')}"></label>` +
      `<label class="gm-field">办公电话（公开）<input name="work_phone" inputmode="tel" maxlength="40" value="${esc(p.work_phone || '')}"></label>` +
      `<label class="gm-check pp-party"><input type="checkbox" name="party_member"${p.party_member ? ' checked' : ''}> 党员</label>` +
      `<label class="gm-field">备注（仅工作人员可见）<textarea name="notes" rows="3" maxlength="2000">${esc(p.notes || '')}</textarea></label>` +
      REASON_HTML,
    async (f) => {
      const body = { reason: reasonOf(f) };
      const fields = {
        name: f.name.value.trim(),
        mobile_phone: f.mobile_phone.value.trim() || null,
        work_phone: f.work_phone.value.trim() || null,
        party_member: f.party_member.checked,
        notes: f.notes.value.trim() || null,
      };
      for (const [k, v] of Object.entries(fields)) if (v !== (p[k] === undefined ? null : p[k])) body[k] = v;
      if (Object.keys(body).length === 1) throw localError('没有需要保存的修改。');
      await api(`/api/v1/people/${p.id}`, null, { method: 'PATCH', body });
      close();
      changed('档案已保存');
    },
    '保存'
  );
}

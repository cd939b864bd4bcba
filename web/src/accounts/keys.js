/* keys.js: the API keys tab of the 账号 screen: keys of the user's scope with their scopes,
 * subtree and last use; create one (only scopes the user holds, bound to a grid of their
 * subtree; the secret is shown once) and revoke. */

import { api } from '../lib/api.js';
import { closeDialog, localError, openDialog } from '../lib/dialog.js';
import { $, esc, toast } from '../lib/dom.js';
import { fmtTime } from '../lib/format.js';
import { errorText, KEY_SCOPE_NAMES } from '../lib/i18n.js';
import { gridPicker } from '../lib/pickers.js';

let me = null;

function rowHtml(k) {
  const scopes = k.scopes.map((s) => `<span class="gm-tag">${esc(KEY_SCOPE_NAMES[s] || s)}</span>`).join(' ');
  return (
    `<tr data-key="${k.id}"><td>${esc(k.name)}</td><td class="gm-code">${esc(k.prefix)}</td><td>${scopes}</td>` +
    `<td>${k.grid_id ? esc(k.grid_name || '') : '全辖区'}</td>` +
    `<td>${k.last_used_at ? esc(fmtTime(k.last_used_at)) : '<span class="gm-muted">从未使用</span>'}</td>` +
    `<td>${k.revoked_at ? '<span class="gm-tag gm-tag-red">已吊销</span>' : '<span class="gm-tag gm-tag-green">有效</span>'}</td>` +
    `<td>${k.revoked_at ? '' : `<button type="button" class="gm-link" data-revoke="${k.id}">吊销</button>`}</td></tr>`
  );
}

async function loadKeys() {
  try {
    const res = await api('/api/v1/keys', { include_revoked: $('ac-revoked').checked, limit: 500 }, { cache: 'no-store' });
    $('ac-key-rows').innerHTML = res.keys.length
      ? res.keys.map(rowHtml).join('')
      : '<tr><td colspan="7" class="gm-empty">暂无 API 密钥</td></tr>';
  } catch (e) {
    $('ac-key-rows').innerHTML = `<tr><td colspan="7" class="gm-error">${esc(errorText(e))}</td></tr>`;
  }
}

function newKey() {
  const mine = Object.keys(KEY_SCOPE_NAMES).filter((s) => me.scopes.indexOf(s) >= 0);
  let grid = null;
  const form = openDialog(
    '新建 API 密钥',
    '<label class="gm-field">用途 <em>*</em><input name="name" maxlength="100" placeholder="如：12345 热线平台"></label>' +
      '<div class="gm-field">权限 <em>*</em><div class="ac-scopes">' +
      mine.map((s) => `<label class="gm-check"><input type="checkbox" name="scope" value="${s}"> ${esc(KEY_SCOPE_NAMES[s])}</label>`).join('') +
      '</div></div>' +
      `<div class="gm-field">范围${me.role === 'admin' ? '<span class="gm-muted">留空为全辖区</span>' : ' <em>*</em>'}<div id="ac-key-grid"></div></div>` +
      '<label class="gm-field">原因<input name="reason" maxlength="500"></label>',
    async (f) => {
      const scopes = [...f.querySelectorAll('input[name=scope]:checked')].map((i) => i.value);
      if (!f.name.value.trim()) throw localError('请填写密钥的用途。');
      if (!scopes.length) throw localError('请至少选择一项权限。');
      if (!grid.value && me.role !== 'admin') throw localError('请选择密钥可用的网格范围。');
      const body = { name: f.name.value.trim(), scopes };
      if (grid.value) body.grid = grid.value.id;
      if (f.reason.value.trim()) body.reason = f.reason.value.trim();
      const key = await api('/api/v1/keys', null, { method: 'POST', body });
      closeDialog();
      openDialog(
        '密钥已创建',
        '<p>请立即复制保存，此密钥只显示这一次：</p>' +
          `<div class="ac-secret" data-gm="key-secret">${esc(key.key)}</div>` +
          '<p class="gm-muted">对方系统以 X-API-Key 请求头发送此密钥。</p>',
        null
      );
      loadKeys();
    },
    '创建',
    { name: '用途', scopes: '权限', grid: '范围' }
  );
  grid = gridPicker(form.querySelector('#ac-key-grid'));
}

/** Wire the keys tab for this user. */
export function mountKeys(user) {
  me = user;
  document.querySelector('[data-gm=new-key]').addEventListener('click', newKey);
  $('ac-revoked').addEventListener('change', loadKeys);
  $('ac-key-rows').addEventListener('click', async (e) => {
    const b = e.target.closest('[data-revoke]');
    if (!b) return;
    try {
      await api(`/api/v1/keys/${b.getAttribute('data-revoke')}`, null, { method: 'DELETE' });
      toast('密钥已吊销', 'ok');
      loadKeys();
    } catch (err) {
      toast(errorText(err), 'error');
    }
  });
  loadKeys();
}

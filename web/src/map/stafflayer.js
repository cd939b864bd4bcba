/* stafflayer.js: overlays for staff only (三单制 orders, the 七必访 tint). They carry residents'
 * needs or counts of people under care, so anonymous visitors never get them: the layer is in
 * the layer control while a staff user is logged in and leaves it, emptied, on logout. */

import { isStaff, onSession } from '../lib/session.js';
import { GM } from './context.js';

/** Offer `layer` as `label` to staff; `forget()` drops what it loaded when they log out. */
export function offerToStaff(refs, layer, label, forget) {
  let registered = false;
  onSession((me) => {
    if (isStaff(me) && !registered) {
      refs.control.addOverlay(layer, label);
      registered = true;
    } else if (!isStaff(me) && registered) {
      GM.map.removeLayer(layer);
      refs.control.removeLayer(layer);
      registered = false;
      forget();
      layer.clearLayers();
    }
  });
}

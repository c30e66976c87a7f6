//! Link transfers: uploads and downloads over each server's processor-sharing link (see
//! [`super::link`]), bandwidth re-draws, and the one-way latency after a transfer.

use super::Sim;
use super::events::Ev;
use crate::world::ServerId;

impl Sim<'_> {
    /// Bring a link's virtual clocks up to now (refreshing its bandwidth if it was idle).
    fn touch(&mut self, s: ServerId) {
        let now = self.now;
        let l = &mut self.srv[s as usize];
        if l.up.len() == 0 && l.down.len() == 0 {
            l.cur_bw = l.bw.at(now);
        }
        l.up.advance(now, l.cur_bw);
        l.down.advance(now, l.cur_bw);
    }

    /// Starts moving `bits` for `flight` up to (`up`) or down from server `s`.
    pub(super) fn start_transfer(&mut self, s: ServerId, up: bool, bits: f64, flight: u32) {
        self.touch(s);
        self.seq += 1;
        let seq = self.seq;
        let l = &mut self.srv[s as usize];
        if up { &mut l.up } else { &mut l.down }.push(bits, seq, flight);
        self.resched(s, up);
        self.ensure_redraw(s);
    }

    /// Schedules the next completion of one direction of server `s`'s link.
    fn resched(&mut self, s: ServerId, up: bool) {
        let l = &mut self.srv[s as usize];
        let bw = l.cur_bw;
        let d = if up { &mut l.up } else { &mut l.down };
        d.version += 1;
        let v = d.version;
        if let Some(t) = d.next_done(bw) {
            let t = t.max(self.now);
            self.schedule(
                t,
                if up {
                    Ev::UpDone(s, v)
                } else {
                    Ev::DownDone(s, v)
                },
            );
        }
    }

    /// Schedules the next bandwidth re-draw of a busy, fluctuating link.
    fn ensure_redraw(&mut self, s: ServerId) {
        let l = &self.srv[s as usize];
        if !l.redraw_scheduled && l.bw.varies() && (l.up.len() + l.down.len()) > 0 {
            let t = l.bw.next_change(self.now);
            self.srv[s as usize].redraw_scheduled = true;
            self.schedule(t, Ev::Redraw(s));
        }
    }

    /// The bandwidth of server `s`'s link changes.
    pub(super) fn on_redraw(&mut self, s: ServerId) {
        let now = self.now;
        let l = &mut self.srv[s as usize];
        l.redraw_scheduled = false;
        l.up.advance(now, l.cur_bw);
        l.down.advance(now, l.cur_bw);
        l.cur_bw = l.bw.at(now);
        self.resched(s, true);
        self.resched(s, false);
        self.ensure_redraw(s);
    }

    /// Transfers of server `s` finished (`up`: uploads): they arrive after the link latency.
    pub(super) fn on_link_done(&mut self, s: ServerId, up: bool) {
        self.touch(s);
        let mut done = std::mem::take(&mut self.scratch_done);
        done.clear();
        let l = &mut self.srv[s as usize];
        if up { &mut l.up } else { &mut l.down }.pop_done(&mut done);
        let latency = l.latency_ns;
        for &f in &done {
            let t = self.now.saturating_add(latency);
            self.schedule(
                t,
                if up {
                    Ev::AtServer(f)
                } else {
                    Ev::Delivered(f)
                },
            );
        }
        self.scratch_done = done;
        self.resched(s, up);
    }
}

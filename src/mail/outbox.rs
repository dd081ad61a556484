//! The outbox as `mail` sees it: the rows and their queries live in
//! `store::outbox`; these names are kept here so callers read
//! `mail::outbox::…` as before.

pub use crate::store::outbox::{
    all, cancel_unclaimed_reports, claim, enqueue, failed, failed_count, mark_cancelled, mark_failed, mark_retry,
    mark_sent, message_id, notice, notice_refused_copies, pending_count, queue_withdrawal, release, renew_claim,
    report, webhook, withdrawal, Channel, MailKind, MailRow, NewMail, DIGEST_MAX,
};

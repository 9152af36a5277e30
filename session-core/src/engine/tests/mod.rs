//! The call engine on a virtual clock: a caller, the targets it rings, transfer targets —
//! every message the engine sends looked at, time moved by hand.

mod calls;
mod dtmf;
mod extensions;
mod harness;
mod in_dialog;
mod local;
mod properties;
mod relay;
mod transfer;

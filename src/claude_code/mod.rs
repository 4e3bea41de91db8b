//! Claude Code's hook contract, served the same way by both transports: `orchestrator hook`
//! (a command Claude Code runs, reaching the server over HTTP) and the server's own route for
//! Claude Code's HTTP hooks. It owns what a hook input is and becomes ([`input`]), which tool
//! uses a person is asked about ([`gates`]), how an approval is opened, joined and waited for
//! and how the next instruction is taken at Stop ([`flow`], over the [`flow::Orchestrator`]
//! each transport provides), and the JSON Claude Code reads back ([`decision`]).

pub mod decision;
pub mod flow;
pub mod gates;
pub mod input;

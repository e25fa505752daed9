//! Scenario 8, query: what the server reports about small and large pages; checked by the
//! client, which must PASS. At its STEP the root task queries the client's page itself:
//! the administrator sees the physical address the client is not shown.

use alloc::format;
use alloc::string::String;

use mem_protocol::{Request, Target, Value};

use super::{with_client, USER};
use crate::ctx::Ctx;
use crate::DEFAULT_QUOTA;

pub fn run(ctx: &mut Ctx) -> Result<(), String> {
    let p = ctx.spawn(8, 0, 0, USER, DEFAULT_QUOTA)?;
    with_client(ctx, p, |ctx, b| {
        let (values, reply) = ctx.expect_step(b, 1)?;
        let addr = values.first().copied().unwrap_or(0);
        let q = ctx.admin.request(&Request::Query { target: Target::Client(b), addr });
        ctx.answer(reply);
        match q? {
            Value::Query(q) if q.paddr != 0 => {}
            v => return Err(format!("the administrator's Query of {addr:#x} shows no physical address: {v:?}")),
        }
        ctx.expect_pass(b)
    })
}

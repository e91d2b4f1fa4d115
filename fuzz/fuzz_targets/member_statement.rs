//! Member statements and load reports from arbitrary bytes: decoding returns a value or an
//! error, verifying returns a verdict, never a panic; and no arbitrary bytes verify as a
//! statement of the test auth-server's members (they would need a node key's signature).

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_engine::membership::{testkit, MemberInfo};
use switchboard_proto::member::LoadReport;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = postcard::from_bytes::<MemberInfo>(data) {
        let verdict = info.proof.verify(&testkit::anchor(), &info.body());
        assert!(verdict.is_err(), "arbitrary bytes verified as a member statement");
    }
    if let Ok(report) = postcard::from_bytes::<LoadReport>(data) {
        let _ = report.verify();
    }
});

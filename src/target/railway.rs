//! The `railway` target (not built yet: every operation says so).

use async_trait::async_trait;

use super::{Change, Check, Context, Observed, Round, Target, TargetError};
use crate::manifest::RailwaySpec;

pub struct RailwayTarget {
    name: String,
}

impl RailwayTarget {
    pub fn new(name: &str, _spec: &RailwaySpec, _ctx: &Context) -> Result<Self, TargetError> {
        Ok(RailwayTarget {
            name: name.to_string(),
        })
    }

    fn missing(&self) -> TargetError {
        TargetError::failed("the railway target is not available in this build")
    }
}

#[async_trait]
impl Target for RailwayTarget {
    fn name(&self) -> &str {
        &self.name
    }

    fn describe(&self) -> String {
        "railway".to_string()
    }

    async fn read(&self, _round: Round, _keys: &[String]) -> Result<Observed, TargetError> {
        Err(self.missing())
    }

    async fn write(&self, _observed: &Observed, _changes: &[Change]) -> Result<(), TargetError> {
        Err(self.missing())
    }

    async fn check(&self) -> Vec<Check> {
        vec![Check {
            what: "railway backend".into(),
            outcome: Err(self.missing()),
        }]
    }
}

/// Per-run Railway state shared by all railway targets (name resolution).
#[derive(Default)]
pub struct Shared {}

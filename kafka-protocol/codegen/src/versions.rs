//! Version ranges as the schemas write them ("0+", "3-5", "7", "none"), and
//! the Rust conditions that test a `version` against them.

/// An inclusive range of versions, possibly empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    pub min: i16,
    pub max: i16,
}

/// What a range check compiles to in a given context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    /// True in every version of the context: no check needed.
    Always,
    /// False in every version of the context: the code can be left out.
    Never,
    /// A boolean Rust expression over `version`.
    Expr(String),
}

impl Versions {
    pub const NONE: Versions = Versions { min: 1, max: 0 };

    pub fn parse(text: &str) -> Result<Versions, String> {
        let text = text.trim();
        let bad = || format!("bad version range {text:?}");
        if text == "none" {
            return Ok(Versions::NONE);
        }
        if let Some(min) = text.strip_suffix('+') {
            let min = min.parse().map_err(|_| bad())?;
            return Ok(Versions { min, max: i16::MAX });
        }
        if let Some((lo, hi)) = text.split_once('-') {
            return Ok(Versions {
                min: lo.parse().map_err(|_| bad())?,
                max: hi.parse().map_err(|_| bad())?,
            });
        }
        let only = text.parse().map_err(|_| bad())?;
        Ok(Versions {
            min: only,
            max: only,
        })
    }

    pub fn is_empty(self) -> bool {
        self.min > self.max
    }

    pub fn intersect(self, other: Versions) -> Versions {
        Versions {
            min: self.min.max(other.min),
            max: self.max.min(other.max),
        }
    }

    /// The smallest range holding both (their hull: a superset of the union).
    pub fn hull(self, other: Versions) -> Versions {
        if self.is_empty() {
            return other;
        }
        if other.is_empty() {
            return self;
        }
        Versions {
            min: self.min.min(other.min),
            max: self.max.max(other.max),
        }
    }

    /// The condition "version is in `self`", for code that only runs in `context`.
    pub fn cond_in(self, context: Versions) -> Cond {
        let within = self.intersect(context);
        if within.is_empty() {
            return Cond::Never;
        }
        if within == context {
            return Cond::Always;
        }
        let mut parts = Vec::new();
        if within.min > context.min {
            parts.push(format!("version >= {}", within.min));
        }
        if within.max < context.max {
            parts.push(format!("version <= {}", within.max));
        }
        Cond::Expr(parts.join(" && "))
    }

    pub fn describe(self) -> String {
        if self.is_empty() {
            "none".to_string()
        } else if self.max == i16::MAX {
            format!("{}+", self.min)
        } else if self.min == self.max {
            format!("{}", self.min)
        } else {
            format!("{}-{}", self.min, self.max)
        }
    }
}

impl Cond {
    /// The condition as a Rust boolean expression.
    pub fn expr(&self) -> String {
        match self {
            Cond::Always => "true".to_string(),
            Cond::Never => "false".to_string(),
            Cond::Expr(e) => e.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(
            Versions::parse("3+").unwrap(),
            Versions {
                min: 3,
                max: i16::MAX
            }
        );
        assert_eq!(Versions::parse("0-4").unwrap(), Versions { min: 0, max: 4 });
        assert_eq!(Versions::parse("7").unwrap(), Versions { min: 7, max: 7 });
        assert!(Versions::parse("none").unwrap().is_empty());
        assert!(Versions::parse("x").is_err());
    }

    #[test]
    fn conditions_are_relative_to_the_context() {
        let ctx = Versions { min: 0, max: 9 };
        assert_eq!(Versions::parse("0+").unwrap().cond_in(ctx), Cond::Always);
        assert_eq!(Versions::parse("10+").unwrap().cond_in(ctx), Cond::Never);
        assert_eq!(
            Versions::parse("3+").unwrap().cond_in(ctx),
            Cond::Expr("version >= 3".into())
        );
        assert_eq!(
            Versions::parse("2-4").unwrap().cond_in(ctx),
            Cond::Expr("version >= 2 && version <= 4".into())
        );
    }
}

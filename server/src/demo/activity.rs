//! Field work over days: visits and assistance steps by each field officer, receiving sessions
//! and outreach by each commune's lead, as the operations of one synthetic replica per officer
//! (deterministic from the seed). Each resident's next step is the core's
//! [`AccountState::next_step`].

use super::calendar::{self, local_ms};
use super::names::uuid7;
use super::plan::{CommunePlan, OfficerPlan, Plan, VillagePlan};
use chrono::{Datelike, NaiveDate};
use doorstep_core::{
    AccountState, Assist, AssistStep, FailureReason, Hlc, Op, OpBody, Outreach, OutreachKind,
    ReplicaId, Role, Session, SessionKind, Visit, VisitOutcome,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use uuid::Uuid;

/// What the synthetic field activity made.
#[derive(Debug, Clone, Default)]
pub struct ActivitySummary {
    /// Operations.
    pub ops: usize,
    /// Visits.
    pub visits: usize,
    /// Assistance steps (successful and failed).
    pub assists: usize,
    /// Failed steps.
    pub failures: usize,
    /// Retractions.
    pub retractions: usize,
    /// Sessions at receiving points.
    pub sessions: usize,
    /// Outreach events.
    pub outreach: usize,
    /// Each synthetic replica's officer: the demo enrols one phone per replica.
    pub replicas: Vec<(Uuid, ReplicaId)>,
}

/// Whether a synthetic step may fail (in the demo's and the simulator's world): activations and
/// level-1 guidance (no OTP, a phone in someone else's name, no chip card…); taking a level-2
/// application and portal guidance always go through.
pub fn may_fail(step: AssistStep) -> bool {
    matches!(
        step,
        AssistStep::Level1Activated | AssistStep::Level2Activated | AssistStep::Level1Guided
    )
}

/// Why a synthetic step failed: any reason, drawn uniformly.
pub fn failure_reason(rng: &mut StdRng) -> FailureReason {
    FailureReason::ALL[rng.gen_range(0..FailureReason::ALL.len())]
}

/// Field activity for the first `plan.config.activity_days` days, as operations of one
/// synthetic replica per field officer (and per commune lead for sessions and outreach).
/// Deterministic from the seed.
pub fn activity_ops(plan: &Plan) -> (Vec<Op>, ActivitySummary) {
    let c = &plan.config;
    let mut work = Work {
        rng: StdRng::seed_from_u64(c.seed ^ 0x5eed_f1e1_d000),
        state: plan
            .residents()
            .map(|(_, r)| (r.id, AccountState::of_roster(r.status)))
            .collect(),
        received: BTreeMap::new(),
        ops: Vec::new(),
        summary: ActivitySummary::default(),
    };
    let days = calendar::days(c.start, c.end, c.activity_days as usize);
    for o in plan.officers.iter().filter(|o| o.role == Role::Field) {
        work.field_officer(plan, o, &days);
    }
    // Receiving sessions and outreach, recorded by each commune's lead.
    for lead in plan.officers.iter().filter(|o| o.role == Role::CommuneLead) {
        work.commune_lead(plan, lead, &days);
    }
    work.summary.ops = work.ops.len();
    (work.ops, work.summary)
}

/// One synthetic officer's replica.
struct Worker<'a> {
    officer: &'a OfficerPlan,
    replica: ReplicaId,
    counter: u64,
    last_ms: i64,
}

impl<'a> Worker<'a> {
    /// The replica of `officer`, its id drawn from the generator at `ms`.
    fn new(officer: &'a OfficerPlan, rng: &mut StdRng, ms: i64) -> Self {
        Worker {
            officer,
            replica: ReplicaId(uuid7(rng, ms)),
            counter: 0,
            last_ms: 0,
        }
    }

    /// The replica's next operation, at `at_ms` or just after its last one.
    fn op(&mut self, at_ms: i64, body: OpBody) -> Op {
        self.counter += 1;
        self.last_ms = self.last_ms.max(at_ms) + 1;
        Op {
            replica: self.replica,
            counter: self.counter,
            hlc: Hlc::new(self.last_ms as u64, 0),
            body,
        }
    }
}

/// The activity being made: the generator, each resident's true progress, and the output.
struct Work {
    rng: StdRng,
    /// Per resident, the progress so far (the roster's claim joined with successful steps).
    state: BTreeMap<Uuid, AccountState>,
    /// Level-2 applications taken per commune and day: the receiving sessions report them.
    received: BTreeMap<(String, NaiveDate), u32>,
    ops: Vec<Op>,
    summary: ActivitySummary,
}

impl Work {
    /// A field officer's days: visits to the households of their villages, in turn.
    fn field_officer(&mut self, plan: &Plan, o: &OfficerPlan, days: &[NaiveDate]) {
        let mut w = Worker::new(o, &mut self.rng, local_ms(plan.config.start, 0));
        self.summary.replicas.push((o.id, w.replica));
        let villages: Vec<&VillagePlan> =
            o.villages.iter().filter_map(|v| plan.village(v)).collect();
        // Each household with its residents' ids.
        let households: Vec<(Uuid, Vec<Uuid>)> = villages
            .iter()
            .flat_map(|v| {
                v.households.iter().map(move |h| {
                    let residents = &v.residents[h.residents.clone()];
                    (h.id, residents.iter().map(|r| r.id).collect())
                })
            })
            .collect();
        if households.is_empty() {
            return;
        }
        let mut next = 0usize;
        for day in days {
            if self.rng.gen_bool(0.1) {
                continue; // a day off or at the station
            }
            let mut t = local_ms(*day, 7) + self.rng.gen_range(0..3_600_000);
            let visits = self.rng.gen_range(16..=30);
            for _ in 0..visits {
                let (household, residents) = &households[next % households.len()];
                next += 1;
                t = self.visit(&mut w, *household, residents, *day, t);
            }
        }
    }

    /// A visit to `household` after `t`, and when someone was met, help for its residents.
    /// Returns the time the officer leaves.
    fn visit(
        &mut self,
        w: &mut Worker,
        household: Uuid,
        residents: &[Uuid],
        day: NaiveDate,
        t: i64,
    ) -> i64 {
        let mut t = t + self.rng.gen_range(600_000..1_500_000);
        let outcome = match self.rng.gen_range(0..100) {
            0..=64 => VisitOutcome::Met,
            65..=84 => VisitOutcome::NobodyHome,
            85..=92 => VisitOutcome::ComeBack,
            93..=96 => VisitOutcome::Refused,
            _ => VisitOutcome::MovedAway,
        };
        let visit_id = uuid7(&mut self.rng, t);
        let visit = Visit {
            id: visit_id,
            household_id: household,
            officer_id: w.officer.id,
            at_ms: t,
            outcome,
            revisit_at_ms: (outcome == VisitOutcome::ComeBack).then_some(t + 86_400_000),
            note: None,
            location: None,
        };
        self.ops.push(w.op(t, OpBody::Visit(visit)));
        self.summary.visits += 1;
        if self.rng.gen_bool(0.01) {
            self.retract(w, t + 60_000, visit_id, "ghi nhầm hộ");
        }
        if outcome != VisitOutcome::Met {
            return t;
        }
        for rid in residents {
            if !self.state.contains_key(rid) {
                continue;
            }
            if self.rng.gen_bool(0.3) {
                continue; // not at home, or not this time
            }
            t = self.assist(w, *rid, day, t);
        }
        t
    }

    /// Up to three steps for `resident` in one visit, each the next its state needs; a
    /// failure or a level-2 application (activated later, by SMS) ends the visit for them.
    /// Returns the time of the last step.
    fn assist(&mut self, w: &mut Worker, resident: Uuid, day: NaiveDate, t: i64) -> i64 {
        let mut t = t;
        for _ in 0..3 {
            let Some(&s) = self.state.get(&resident) else {
                break;
            };
            let Some(step) = s.next_step(|| self.rng.gen_bool(0.55)) else {
                break;
            };
            let fails = may_fail(step) && self.rng.gen_bool(0.15);
            t += self.rng.gen_range(60_000..300_000);
            let id = uuid7(&mut self.rng, t);
            let failure = fails.then(|| failure_reason(&mut self.rng));
            let assist = Assist {
                id,
                resident_id: resident,
                officer_id: w.officer.id,
                at_ms: t,
                step,
                failure,
                receiving_point: (step == AssistStep::Level2Received)
                    .then(|| "Điểm tiếp nhận lưu động".to_owned()),
                note: None,
            };
            self.ops.push(w.op(t, OpBody::Assist(assist)));
            self.summary.assists += 1;
            if fails {
                self.summary.failures += 1;
                break;
            }
            if self.rng.gen_bool(0.015) {
                // Recorded for the wrong resident: retracted, the state stays.
                self.retract(w, t + 30_000, id, "nhầm người");
                break;
            }
            self.state
                .insert(resident, s.join(AccountState::of_step(step)));
            if step == AssistStep::Level2Received {
                let unit = w.officer.unit.clone();
                *self.received.entry((unit, day)).or_default() += 1;
                break;
            }
        }
        t
    }

    /// `w` retracts `fact_id` at `at_ms`.
    fn retract(&mut self, w: &mut Worker, at_ms: i64, fact_id: Uuid, reason: &str) {
        let body = OpBody::Retract {
            fact_id,
            reason: Some(reason.to_owned()),
        };
        self.ops.push(w.op(at_ms, body));
        self.summary.retractions += 1;
    }

    /// A commune lead's days: a mobile receiving team every day and the station on weekdays,
    /// reporting the applications the field officers took; outreach now and then.
    fn commune_lead(&mut self, plan: &Plan, lead: &OfficerPlan, days: &[NaiveDate]) {
        let Some(cm) = plan.communes.iter().find(|c| c.unit.code == lead.unit) else {
            return;
        };
        let mut w = Worker::new(lead, &mut self.rng, local_ms(plan.config.start, 0));
        self.summary.replicas.push((lead.id, w.replica));
        for &day in days {
            let taken = self
                .received
                .get(&(cm.unit.code.clone(), day))
                .copied()
                .unwrap_or(0);
            let weekday = day.weekday().num_days_from_monday() < 5;
            let mobile = if weekday { taken * 3 / 5 } else { taken };
            let village = &cm.villages[self.rng.gen_range(0..cm.villages.len())];
            let place = format!("Nhà văn hóa {}", village.name);
            self.session(&mut w, cm, day, (SessionKind::Mobile, place, 7, mobile));
            if weekday {
                let place = format!("Trụ sở Công an {}", cm.unit.name);
                let fixed = (SessionKind::Fixed, place, 13, taken - mobile);
                self.session(&mut w, cm, day, fixed);
            }
            if self.rng.gen_bool(0.3) {
                self.outreach(&mut w, village, day);
            }
        }
    }

    /// A receiving session on `day`: kind, place, starting hour and applications taken.
    fn session(
        &mut self,
        w: &mut Worker,
        cm: &CommunePlan,
        day: NaiveDate,
        (kind, place, hour, applications): (SessionKind, String, u32, u32),
    ) {
        let starts = local_ms(day, hour) + self.rng.gen_range(0..1_800_000);
        let id = uuid7(&mut self.rng, starts);
        let session = Session {
            id,
            unit_code: cm.unit.code.clone(),
            officer_id: w.officer.id,
            kind,
            place,
            starts_at_ms: starts,
            ends_at_ms: starts + 3 * 3_600_000,
            applications,
            note: None,
        };
        self.ops.push(w.op(starts, OpBody::Session(session)));
        self.summary.sessions += 1;
        if self.rng.gen_bool(0.02) {
            self.retract(w, starts + 4 * 3_600_000, id, "trùng phiên");
        }
    }

    /// A meeting, a loudspeaker broadcast or a training in `village` on `day`.
    fn outreach(&mut self, w: &mut Worker, village: &VillagePlan, day: NaiveDate) {
        let (kind, hour, people) = match self.rng.gen_range(0..3) {
            0 => (OutreachKind::Meeting, 19, self.rng.gen_range(30..150)),
            1 => (OutreachKind::Loudspeaker, 6, self.rng.gen_range(200..900)),
            _ => (OutreachKind::Training, 14, self.rng.gen_range(10..40)),
        };
        let at = local_ms(day, hour) + self.rng.gen_range(0..1_800_000);
        let outreach = Outreach {
            id: uuid7(&mut self.rng, at),
            unit_code: village.code.clone(),
            officer_id: w.officer.id,
            kind,
            at_ms: at,
            place: format!("Nhà văn hóa {}", village.name),
            people_reached: people,
            note: None,
        };
        self.ops.push(w.op(at, OpBody::Outreach(outreach)));
        self.summary.outreach += 1;
    }
}

// Synthetic agent profiles and the 30 standard queries of the matching suite (MAMA stress study,
// phase 1: "synthetic agent profiles from 25 specialty-domain templates", seed 42).
//
// 30 specialty domains, each with its own titles, skills and clients; a profile is one of 8
// phrasings filled from its domain's slots (plus years of experience and a city), all drawn from
// the seeded PRNG. Each query belongs to one domain, which lets the suite check that the top-5 it
// times are the right agents.
import { prng, seededUuid } from './harness.js'

interface Domain {
  key: string
  field: string
  titles: string[]
  skills: string[]
  clients: string[]
}

const d = (key: string, field: string, titles: string, skills: string, clients: string): Domain => ({
  key,
  field,
  titles: titles.split('|'),
  skills: skills.split('|'),
  clients: clients.split('|'),
})

export const DOMAINS: Domain[] = [
  d(
    'tax',
    'tax preparation',
    'Tax advisor|Certified public accountant|Enrolled tax agent',
    'income tax returns|itemised deductions|tax refunds|self-employment tax|filing extensions|tax credits',
    'individuals|freelancers|families',
  ),
  d(
    'bookkeeping',
    'bookkeeping and auditing',
    'Bookkeeper|Internal auditor|Chartered accountant',
    'ledger reconciliation|year-end closing|financial statements|audit preparation|accounts payable|expense tracking',
    'small businesses|nonprofits|retail shops',
  ),
  d(
    'tenancy',
    'housing and tenancy law',
    'Tenant rights lawyer|Housing attorney|Legal aid advocate',
    'eviction defence|lease disputes|security deposit claims|rent increases|landlord negotiations|housing court hearings',
    'renters|tenant unions|low-income families',
  ),
  d(
    'emergency',
    'emergency medicine',
    'Emergency physician|Paramedic|ER nurse',
    'cardiac arrest response|chest pain assessment|CPR and defibrillation|trauma triage|stroke recognition|first aid',
    'patients|ambulance crews|hospitals',
  ),
  d(
    'backend',
    'backend software engineering',
    'Backend engineer|Systems programmer|Site reliability engineer',
    'async Rust services|deadlock debugging|concurrency bugs|load testing|performance profiling|distributed systems',
    'startups|platform teams|SaaS companies',
  ),
  d(
    'datasci',
    'data science',
    'Data scientist|Machine learning engineer|Analytics lead',
    'customer churn prediction|subscription retention models|gradient boosting|A/B test analysis|cohort analysis|feature engineering',
    'subscription businesses|e-commerce companies|telecoms',
  ),
  d(
    'cooking',
    'Italian cooking',
    'Chef|Cooking instructor|Pastry cook',
    'fresh handmade pasta|gnocchi and ravioli|risotto|tomato sauces|home cooking classes|bread baking',
    'home cooks|restaurants|food lovers',
  ),
  d(
    'plumbing',
    'plumbing',
    'Licensed plumber|Pipe fitter|Plumbing technician',
    'leaking pipes|kitchen sink repairs|clogged drains|water heater installation|burst pipes|toilet repairs',
    'homeowners|landlords|apartment buildings',
  ),
  d(
    'solar',
    'electrical and solar installation',
    'Electrician|Solar installer|Electrical contractor',
    'solar panel installation|rooftop PV wiring|inverter setup|home rewiring|battery storage|grid connection',
    'homeowners|farms|commercial buildings',
  ),
  d(
    'travel',
    'travel planning',
    'Travel planner|Tour organiser|Backpacking guide',
    'budget itineraries|Southeast Asia trips|Vietnam and Thailand tours|hostel booking|visa paperwork|rail passes',
    'backpackers|students|couples',
  ),
  d(
    'japanese',
    'Japanese language teaching',
    'Japanese tutor|Language teacher|Conversation coach',
    'spoken Japanese practice|JLPT preparation|kanji reading|pronunciation drills|keigo|conversation practice',
    'adult learners|students|expats',
  ),
  d(
    'investing',
    'investment advice',
    'Financial advisor|Portfolio manager|Investment analyst',
    'emerging market funds|stock valuation|ETF selection|risk assessment|retirement portfolios|bond allocation',
    'private investors|retirees|family offices',
  ),
  d(
    'marketing',
    'digital marketing',
    'Social media strategist|Brand marketer|Growth marketer',
    'brand awareness campaigns|Instagram and TikTok growth|influencer partnerships|content calendars|SEO|paid social ads',
    'consumer brands|startups|local businesses',
  ),
  d(
    'mentalhealth',
    'mental health',
    'Psychotherapist|Clinical psychologist|Counsellor',
    'anxiety treatment|insomnia and sleep problems|cognitive behavioural therapy|stress management|panic attacks|mindfulness',
    'adults|students|couples',
  ),
  d(
    'mechanic',
    'car repair',
    'Auto mechanic|Brake specialist|Car service technician',
    'brake pad replacement|grinding brake noises|engine diagnostics|suspension repairs|oil changes|transmission service',
    'car owners|delivery fleets|taxi drivers',
  ),
  d(
    'architecture',
    'residential architecture',
    'Architect|Passive house designer|Building designer',
    'energy-efficient homes|family house design|passive solar layouts|insulation planning|floor plans|building permits',
    'families|developers|homeowners',
  ),
  d(
    'exams',
    'exam tutoring',
    'Exam tutor|High school teacher|Test prep coach',
    'university entrance exams|maths and physics revision|SAT preparation|essay writing|study plans|mock exams',
    'high school students|parents|schools',
  ),
  d(
    'nutrition',
    'nutrition',
    'Nutritionist|Registered dietitian|Plant-based diet coach',
    'vegan meal plans|protein intake|weight management diets|food allergies|sports nutrition|vitamin deficiencies',
    'athletes|vegans|patients',
  ),
  d(
    'realestate',
    'real estate and mortgages',
    'Mortgage broker|Real estate agent|Home buying advisor',
    'first-time home buying|mortgage applications|down payment planning|property viewings|refinancing|closing costs',
    'first-time buyers|young couples|families',
  ),
  d(
    'security',
    'cybersecurity',
    'Security engineer|Incident responder|Penetration tester',
    'breach investigation|cloud server intrusions|incident response|malware forensics|penetration testing|access control audits',
    'enterprises|cloud providers|banks',
  ),
  d(
    'logistics',
    'logistics',
    'Logistics coordinator|Supply chain analyst|Fleet dispatcher',
    'delivery route optimisation|warehouse transfers|fleet scheduling|inventory planning|last-mile delivery|freight costs',
    'retailers|distributors|courier companies',
  ),
  d(
    'journalism',
    'investigative journalism',
    'Investigative journalist|Political reporter|Newspaper editor',
    'corruption investigations|city council reporting|public records requests|source protection|fact checking|political scandals',
    'newspapers|broadcasters|readers',
  ),
  d(
    'veterinary',
    'veterinary care',
    'Veterinarian|Veterinary nurse|Small animal vet',
    'cat and dog vaccinations|pet checkups|neutering|dental care for pets|flea treatment|pet nutrition',
    'pet owners|animal shelters|breeders',
  ),
  d(
    'fitness',
    'fitness coaching',
    'Personal trainer|Strength coach|Fitness instructor',
    'beginner strength training|weightlifting routines|muscle building|workout programmes|mobility exercises|fat loss',
    'beginners|athletes|office workers',
  ),
  d(
    'billing',
    'customer support',
    'Billing support agent|Customer service representative|Account specialist',
    'duplicate charges|refund requests|payment disputes|subscription cancellations|invoice errors|account issues',
    'customers|subscribers|online shoppers',
  ),
  d(
    'bioinfo',
    'computational biology',
    'Computational biologist|Bioinformatician|Structural biologist',
    'protein structure prediction|deep learning for biology|sequence alignment|molecular dynamics|genomics pipelines|AlphaFold models',
    'research labs|biotech companies|universities',
  ),
  d(
    'translation',
    'translation',
    'Medical translator|German-English translator|Certified translator',
    'medical record translation|German to English translation|clinical documents|certified translations|patient reports|pharmaceutical texts',
    'hospitals|patients|clinics',
  ),
  d(
    'projects',
    'project management',
    'Project manager|Scrum master|Delivery lead',
    'sprint planning|late project recovery|team coordination|scheduling and milestones|agile coaching|stakeholder reporting',
    'software teams|agencies|enterprises',
  ),
  d(
    'fraud',
    'fraud detection',
    'Fraud analyst|Payments risk engineer|Anti-money-laundering specialist',
    'fraudulent transaction detection|payment log analysis|chargeback prevention|anomaly detection|card fraud rules|AML screening',
    'banks|payment processors|online marketplaces',
  ),
  d(
    'gardening',
    'gardening',
    'Gardener|Horticulturist|Plant doctor',
    'tomato plant diseases|yellowing leaves|vegetable gardens|soil and fertiliser|pest control|pruning',
    'home gardeners|allotment holders|community gardens',
  ),
]

/** The phrasings a profile's specialty text takes. */
const PHRASINGS = [
  '{title} with {years} years of experience in {skill} and {skill2}.',
  'Expert in {field}: {skill}, {skill2} and {skill3} for {client}.',
  '{title} helping {client} with {skill}; also handles {skill2}.',
  'Specialist in {skill} ({field}), {years} years in practice, based in {city}.',
  '{title} focused on {skill} and {skill2}, working with {client}.',
  '{title}. Services: {skill}, {skill2}, {skill3}. Clients: {client}.',
  '{years}-year veteran of {field} in {city}, known for {skill}.',
  'Experienced {title} offering {skill} and advice on {skill2} to {client}.',
]

const CITIES = ['Berlin', 'Lisbon', 'Toronto', 'Osaka', 'Nairobi', 'Austin', 'Melbourne', 'Lyon', 'Seoul', 'Bogota']
const YEARS = [2, 3, 5, 7, 10, 12, 15, 20, 25]

export interface Profile {
  id: string
  /** The text that is embedded (the study's `pml_specialty`). */
  specialty: string
  domain: string
  trust: number
  responseMs: number
}

/** `n` agent profiles, deterministic for a seed; `makeProfiles(m)` is a prefix of `makeProfiles(n)` for m < n. */
export function makeProfiles(n: number, seed = 42): Profile[] {
  const rand = prng(seed)
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]
  return Array.from({ length: n }, () => {
    const domain = pick(DOMAINS)
    const skills = [...domain.skills]
    const nextSkill = () => skills.splice(Math.floor(rand() * skills.length), 1)[0]
    const slots: Record<string, () => string> = {
      title: () => pick(domain.titles),
      field: () => domain.field,
      skill: nextSkill,
      skill2: nextSkill,
      skill3: nextSkill,
      client: () => pick(domain.clients),
      years: () => String(pick(YEARS)),
      city: () => pick(CITIES),
    }
    const specialty = pick(PHRASINGS).replace(/\{(\w+)\}/g, (_, key: string) => slots[key]())
    return { id: seededUuid(rand), specialty, domain: domain.key, trust: 0.5 + rand() * 0.5, responseMs: 50 + rand() * 450 }
  })
}

export const TEMPLATE_COUNT = DOMAINS.length

/** The 30 standard queries, one per domain (`domain` is the agents that should answer it). */
export const QUERIES: { text: string; domain: string }[] = [
  ['Who can help me file my income tax return?', 'tax'],
  ['Audit our bookkeeping before the end of the fiscal year.', 'bookkeeping'],
  ['My landlord is trying to evict me without notice.', 'tenancy'],
  ['Someone collapsed with chest pain, what should I do?', 'emergency'],
  ['Our async Rust service deadlocks under load.', 'backend'],
  ['Predict which customers will cancel their subscription.', 'datasci'],
  ['How do I make fresh pasta at home?', 'cooking'],
  ['Water is leaking under my kitchen sink.', 'plumbing'],
  ['Install solar panels and wire them to the house.', 'solar'],
  ['Plan a cheap two-week trip through Vietnam.', 'travel'],
  ['I want to practise speaking Japanese.', 'japanese'],
  ['Is this emerging market fund a good investment?', 'investing'],
  ['Grow our brand on social media.', 'marketing'],
  ['I cannot sleep and feel anxious all the time.', 'mentalhealth'],
  ['The brakes on my car make a grinding noise.', 'mechanic'],
  ['Design an energy-efficient family house.', 'architecture'],
  ['Help my son prepare for the university entrance exam.', 'exams'],
  ['Create a vegan meal plan with enough protein.', 'nutrition'],
  ['We want to buy our first home and need a mortgage.', 'realestate'],
  ['Our cloud servers were breached last night.', 'security'],
  ['Optimise delivery routes between our warehouses.', 'logistics'],
  ['Investigate corruption in the city council.', 'journalism'],
  ['My cat needs her vaccinations.', 'veterinary'],
  ['Build a strength training routine for beginners.', 'fitness'],
  ['I was charged twice and want a refund.', 'billing'],
  ['Use machine learning to predict protein structures.', 'bioinfo'],
  ['Translate these medical records from German.', 'translation'],
  ['Our project is late; help us plan the next sprints.', 'projects'],
  ['Detect fraudulent transactions in our payment logs.', 'fraud'],
  ['The leaves of my tomato plants are turning yellow.', 'gardening'],
].map(([text, domain]) => ({ text, domain }))

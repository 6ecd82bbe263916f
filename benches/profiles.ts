// Synthetic agent profiles (specialty texts) and the 30 standard queries of the matching suite.
import { prng } from './harness.js'

const TEMPLATES = [
  'Certified accountant handling {a} and {b} for {who}.',
  'Tax advisor focused on {a}, with {years} years of experience in {b}.',
  'Lawyer specialising in {a} and {b}, representing {who}.',
  'Emergency physician experienced in {a}, {b} and patient triage.',
  'Software engineer building {a} systems in {lang}, strong in {b}.',
  'Data scientist modelling {a} with {b}; {years} years in industry.',
  'Chef trained in {cuisine} cuisine, known for {a} and {b}.',
  'Plumber fixing {a} and installing {b} for {who}.',
  'Electrician certified for {a}, {b} and safety inspections.',
  'Travel planner organising {a} trips and {b} for {who}.',
  'Language tutor teaching {lang2} grammar, {a} and {b}.',
  'Financial analyst covering {a} markets and {b} valuation.',
  'Marketing strategist running {a} campaigns and {b} analytics.',
  'Therapist offering {a} and support for {b}.',
  'Mechanic repairing {a} and servicing {b}.',
  'Architect designing {a} buildings with attention to {b}.',
  'Teacher of {subject} preparing students for {a} and {b}.',
  'Nutritionist creating {a} diet plans and advising on {b}.',
  'Real estate agent selling {a} and helping {who} with {b}.',
  'Cybersecurity expert auditing {a} and responding to {b}.',
  'Logistics coordinator optimising {a} and {b} across warehouses.',
  'Journalist investigating {a} and reporting on {b}.',
  'Veterinarian caring for {a}, including {b}.',
  'Fitness coach designing {a} programmes and {b} routines.',
  'Customer support agent resolving {a} issues and {b} requests.',
  'Research scientist studying {a} with expertise in {b}.',
  'Translator working between {lang2} and English on {a} and {b}.',
  'Project manager delivering {a} projects using {b}.',
]

const FILL: Record<string, string[]> = {
  a: ['income tax returns', 'payroll', 'contract disputes', 'cardiac emergencies', 'distributed', 'churn prediction',
    'fresh pasta', 'leaking pipes', 'solar panel wiring', 'budget backpacking', 'conversation practice', 'emerging',
    'social media', 'anxiety counselling', 'diesel engines', 'sustainable', 'university entrance exams', 'vegan',
    'family homes', 'cloud infrastructure', 'route planning', 'public corruption', 'small pets', 'strength training',
    'billing', 'protein folding', 'legal documents', 'software migration', 'bookkeeping', 'fraud detection'],
  b: ['audits', 'deductions', 'tenancy law', 'fractures', 'async runtimes', 'gradient boosting', 'risotto',
    'water heaters', 'home automation', 'visa paperwork', 'pronunciation', 'company', 'SEO', 'sleep problems',
    'brake systems', 'natural light', 'homework', 'food allergies', 'mortgages', 'incident response', 'inventory',
    'climate policy', 'vaccinations', 'mobility', 'refund', 'machine learning', 'medical records', 'agile methods'],
  who: ['small businesses', 'families', 'startups', 'retirees', 'students', 'freelancers', 'landlords', 'hospitals'],
  years: ['3', '5', '8', '12', '15', '20'],
  lang: ['Rust', 'TypeScript', 'Go', 'Python', 'C++', 'Java'],
  lang2: ['Spanish', 'Mandarin', 'German', 'Japanese', 'French', 'Arabic'],
  cuisine: ['Italian', 'Japanese', 'Mexican', 'Indian', 'French', 'Thai'],
  subject: ['mathematics', 'physics', 'history', 'chemistry', 'literature', 'biology'],
}

/** `n` agent profiles from the templates, deterministic for a seed. */
export function makeProfiles(n: number, seed = 42): string[] {
  const rand = prng(seed)
  const pick = (xs: string[]) => xs[Math.floor(rand() * xs.length)]
  return Array.from({ length: n }, (_, i) =>
    TEMPLATES[i % TEMPLATES.length].replace(/\{(\w+)\}/g, (_, key: string) => pick(FILL[key])),
  )
}

export const TEMPLATE_COUNT = TEMPLATES.length

/** The 30 standard queries: requests a user or another agent might route. */
export const QUERIES = [
  'Who can help me file my income tax return?',
  'I need advice on deductions for my small business.',
  'My landlord is trying to evict me without notice.',
  'Someone collapsed with chest pain, what should I do?',
  'Our async Rust service deadlocks under load.',
  'Predict which customers will cancel their subscription.',
  'How do I make fresh pasta at home?',
  'Water is leaking under my kitchen sink.',
  'Install solar panels and wire them to the house.',
  'Plan a cheap two-week trip through Vietnam.',
  'I want to practise speaking Japanese.',
  'Is this emerging market fund a good investment?',
  'Grow our brand on social media.',
  'I cannot sleep and feel anxious all the time.',
  'The brakes on my car make a grinding noise.',
  'Design an energy-efficient family house.',
  'Help my son prepare for the university entrance exam.',
  'Create a vegan meal plan with enough protein.',
  'We want to buy our first home and need a mortgage.',
  'Our cloud servers were breached last night.',
  'Optimise delivery routes between our warehouses.',
  'Investigate corruption in the city council.',
  'My cat needs her vaccinations.',
  'Build a strength training routine for beginners.',
  'I was charged twice and want a refund.',
  'Use machine learning to predict protein structures.',
  'Translate these medical records from German.',
  'Migrate our legacy software to the cloud on schedule.',
  'Audit our bookkeeping before the end of the fiscal year.',
  'Detect fraudulent transactions in our payment logs.',
]

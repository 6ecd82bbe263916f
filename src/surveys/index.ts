// Surveys: questionnaires the experiment sends to its agents, and what their answers add up to.
export { defineSurvey, answerSchema, type Answers, type Question, type QuestionInput, type Survey, type SurveySpec, type SurveyRequest } from './define.js'
export type { QuestionResults, SurveyResults } from './results.js'

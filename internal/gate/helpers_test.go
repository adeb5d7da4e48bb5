package gate

import "github.com/stepgate/stepgate/internal/api"

type apiOutcome = api.OutcomeRequest

// Package report renders an assessment for people (text for a terminal,
// markdown for a pull-request comment or CI summary) and for machines (JSON).
package report

package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/glmkit/glmkit/cookbook/document"
	"github.com/glmkit/glmkit/cookbook/extract"
)

func newExtractCmd() *cobra.Command {
	var (
		conn        cliClientFlags
		model       string
		schemaFile  string
		questions   string
		maxAttempts int
		asJSON      bool
		printSchema bool
	)
	cmd := &cobra.Command{
		Use:   "extract FILE",
		Short: "Extract a résumé (or any document) into JSON that matches a schema",
		Long: `glm extract reads FILE (.txt, .md or .pdf) and asks the model for its facts as
JSON (response_format json_object, the schema in the prompt). The reply is
validated against the JSON Schema; when it does not match, the exact problems
are sent back and the model tries again (--max-attempts in all). The result is
printed only once it validates.

Without --schema the built-in résumé schema is used (name, gender, birth_date,
phone, email, education[school, major, from, to], languages,
work[company, department, title, from, to]); --print-schema shows it.

--questions FILE instead answers the questions in FILE (one per line) about the
document, one by one, as the tutorial does.`,
		Example: `  glm extract examples/resume/lin-xiaozhou.md
  glm extract --schema examples/schema/contact.schema.json examples/resume/lin-xiaozhou.md
  glm extract --questions examples/resume/questions.txt examples/resume/lin-xiaozhou.md`,
		Args: func(cmd *cobra.Command, args []string) error {
			if printSchema {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			if printSchema {
				_, err := out.Write(extract.ResumeSchema())
				return err
			}
			if schemaFile != "" && questions != "" {
				return errors.New("use either --schema (extract JSON) or --questions (answer questions), not both")
			}
			text, err := document.Read(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			client, err := conn.client()
			if err != nil {
				return err
			}
			if questions != "" {
				f, err := os.Open(questions)
				if err != nil {
					return err
				}
				qs, err := extract.ReadQuestions(f)
				f.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", questions, err)
				}
				var all []extract.Answer
				err = extract.AskQuestions(cmd.Context(), client, model, text, qs, func(a extract.Answer) error {
					if asJSON {
						all = append(all, a)
						return nil
					}
					_, err := fmt.Fprintf(out, "Q: %s\n%s\n\n", a.Question, a.Answer)
					return err
				})
				if err != nil {
					return conn.explain(err)
				}
				if asJSON {
					return cliWriteJSON(out, all)
				}
				return nil
			}
			src := extract.ResumeSchema()
			if schemaFile != "" {
				if src, err = os.ReadFile(schemaFile); err != nil {
					return err
				}
			}
			schema, err := extract.CompileSchema(src)
			if err != nil {
				return fmt.Errorf("%s: %w", cliOr(schemaFile, "built-in schema"), err)
			}
			ex := &extract.Extractor{Client: client, Model: model, Schema: schema, MaxAttempts: maxAttempts,
				Attempt: func(n int, problems error) {
					fmt.Fprintf(errOut, "attempt %d did not validate (%v); asking again\n", n, problems)
				}}
			res, err := ex.Extract(cmd.Context(), text)
			if err != nil {
				return conn.explain(err)
			}
			_, err = fmt.Fprintf(out, "%s\n", res.JSON)
			return err
		},
	}
	conn.register(cmd)
	f := cmd.Flags()
	f.StringVar(&model, "model", "glm-4", "chat model")
	f.StringVar(&schemaFile, "schema", "", "JSON Schema file for the output (default: the built-in résumé schema)")
	f.StringVar(&questions, "questions", "", "file of questions, one per line, to answer about the document")
	f.IntVar(&maxAttempts, "max-attempts", 3, "model calls before giving up on valid JSON")
	f.BoolVar(&asJSON, "json", false, "with --questions: print the answers as JSON")
	f.BoolVar(&printSchema, "print-schema", false, "print the built-in résumé schema and exit")
	return cmd
}

func cliOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

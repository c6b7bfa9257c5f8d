package e2e

import "time"

// password is what Anna types when she activates her account and signs in.
const readmePassword = "correct horse battery staple\n"

// readmeSteps are README.md's shell blocks in order, with what the test
// substitutes (ephemeral ports, the token the server printed, shorter
// benchmark runs) and what each block's output must show.
func readmeSteps() []walkStep {
	return []walkStep{
		{match: "go run ./cmd/warden serve",
			subst:      [][2]string{{"go run ./cmd/warden serve", "./warden serve --http-listen :0 --mqtt-listen :0 --log-format json"}},
			background: true, ready: `(?s)(wdn_.*warden is running|warden is running.*wdn_)`},
		{match: "go vet ./... && go test -race ./...", skip: "the test command, which runs this test"},
		{match: "openssl rand -base64 32", needs: "openssl",
			subst: [][2]string{{"/etc/warden/master.key", "master.key.example"}}},
		{match: "go build -o warden ./cmd/warden",
			subst: [][2]string{
				{"go build -o warden ./cmd/warden", `go build -C {repo} -o "$PWD/warden" ./cmd/warden`},
				{"localhost:8443", "localhost:{https}"},
				{"wdn_3q2…", "{token}"},
			},
			want: []string{`HostName=localhost:{mqtts};DeviceId=pump-1;SharedAccessKey=`}},
		{match: `eval "$(./warden device credentials pump-1`, needs: "mosquitto_pub",
			want: []string{`temperature\s+71\.5`, `inletPressure\s+0\.12`}},
		{match: "enrollment group create factory-line-1",
			want: []string{`(?i)scope`}},
		{match: "--enrollment-group factory-line-1", background: true,
			ready: `all devices connected`},
		{match: "twin get pump-0042",
			want: []string{`properties.desired\s+\{.*"interval":5\}`, `status\s+200`, `payload.rebooting\s+true`,
				`completed .* clean filter`}},
		{match: "device regenerate-key pump-1",
			want: []string{`pump-0042\s+root\s+-\s+enabled\s+true`, `connectionString\s+HostName=localhost:{mqtts};DeviceId=pump-1;`,
				`\s1\s+71\.5\s+71\.5`, `no rejected messages`, `device pump-1 deleted`}},
		{match: "simulate --devices 20 --interval 10s", background: true,
			ready: `connected`},
		{match: "cat > hot.json", want: []string{`pump too hot`}},
		{match: "--fault overheat", background: true, ready: `connected`},
		{match: "alarm list --active", eventually: 90 * time.Second,
			want: []string{`pump too hot`}},
		{match: "alarm ack 1",
			want: []string{`alarm 1 \(pump too hot on hot-pump-\d+\) acknowledged`, `webhook whk_\w+ made`,
				`warning: no mail server is configured`, `critical alarms not acknowledged within 15m`}},
		{match: "bench ingest --devices 1000",
			subst: [][2]string{
				{"--devices 1000 --duration 20s", "--devices 20 --duration 3s"},
				{"--rounds 3", "--rounds 1 --devices 20 --duration 2s"},
				{"--clients 64 --duration 20s", "--clients 4 --duration 2s"},
				{"--latency --rate 3000", "--latency --rate 100 --load-devices 10 --probes 10"},
				{"--levels 1000,5000,10000", "--levels 10,20 --settle 200ms --probes 5"},
			},
			needsTCP: "127.0.0.1:1883",
			timeout:  5 * time.Minute,
			want: []string{`(?m)^messages_per_s: \d+ msg/s`, `ratio_vs_reference: `, `dps_registrations_per_s: `,
				`alarm_visible_p99_ms: `, `(?m)^conn_20_open: 20 connections`, `(?s)(deleted the throw-away tenant .*){5}`},
			wantNot: []string{`warning: could not delete`}},
		{match: "bench storage      #", skip: "in-process benchmarks on throw-away databases; their own tests run them"},
		{match: "tenant create --id pellets-gmbh",
			want:    []string{`/activate`},
			capture: map[string]string{"{link}": `(https://\S+/activate\S*)`}},
		{match: "account activate",
			subst: [][2]string{{"'https://localhost:8443/activate?token=…'", "'{link}'"}},
			want:  []string{`anna@pellets.example\) activated`},
			stdin: readmePassword},
		{match: "--role supporter",
			want:    []string{`supporter id: SUP-`},
			capture: map[string]string{"{supporter}": `(SUP-[0-9A-Z]{4}-[0-9A-Z]{4})`}},
		{match: `eval "$(./warden login --email anna@pellets.example)"`, shell: "anna",
			subst: [][2]string{{"SUP-7KQ3-M9XD", "{supporter}"}},
			stdin: readmePassword,
			want: []string{`signed in as anna@pellets.example`, `HostName=localhost:{mqtts};DeviceId=heater-7;SharedAccessKey=`,
				`serialNumber\s+P1234567`, `{supporter} Tom Berger may now see site`, `grant grt_\w+ revoked`,
				`factory service access on`, `warning: no mail server is configured`}},
		{match: "audit list --access-log --outside", shell: "anna",
			want: []string{`operator\s+device.create\s+heater-7`}},
		{match: "audit verify --data-dir warden-data",
			want: []string{`device.delete\s+pump-1\s+success`, `audit chain OK: \d+ entries`}},
		{match: "createdb warden", needs: "createdb", needsTCP: "127.0.0.1:5432", stopServer: true,
			subst: [][2]string{
				{"createdb warden", "createdb {pgdb}"},
				{"/warden?sslmode", "/{pgdb}?sslmode"},
				{"serve --data-dir warden-pg", "serve --http-listen :0 --mqtt-listen :0 --log-format json --data-dir warden-pg"},
			},
			background: true, ready: `(?s)(wdn_.*warden is running|warden is running.*wdn_)`},
	}
}

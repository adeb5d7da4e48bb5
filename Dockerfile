# syntax=docker/dockerfile:1
#
# stepgate: a static binary (CGO off; SQLite is pure Go) on an empty base
# image, running as an unprivileged user. Build:
#
#   docker build -t stepgate:dev --build-arg VERSION=$(git describe --tags --always) .
#
# Run one server on SQLite (the database and the master key live in the
# volume; --dev creates the master key on the first start, mode 0600):
#
#   docker run -p 8080:8080 -v stepgate:/var/lib/stepgate stepgate:dev \
#     --dev --public-url http://localhost:8080
#
# The entrypoint is `stepgate serve`; run other commands with
# --entrypoint /usr/local/bin/stepgate (e.g. `tokens create`). See
# docs/operations.md.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Dependencies first: they change less often than the code.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath \
      -ldflags "-s -w -X github.com/stepgate/stepgate/internal/cli.buildVersion=${VERSION}" \
      -o /out/usr/local/bin/stepgate ./cmd/stepgate
# The runtime image has no shell, no package manager and no libc: it gets
# the CA certificates (for OIDC providers, CI issuers, webhooks, PostgreSQL
# over TLS), a passwd and group entry for the user, and the data directory.
RUN set -eux; \
    mkdir -p /out/etc/ssl/certs /out/var/lib/stepgate /out/tmp; \
    cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/; \
    echo 'stepgate:x:65532:65532:stepgate:/var/lib/stepgate:/sbin/nologin' > /out/etc/passwd; \
    echo 'stepgate:x:65532:' > /out/etc/group; \
    chown 65532:65532 /out/var/lib/stepgate; chmod 0700 /out/var/lib/stepgate; chmod 1777 /out/tmp

FROM scratch
COPY --from=build /out/ /
USER 65532:65532
WORKDIR /var/lib/stepgate
VOLUME ["/var/lib/stepgate"]
EXPOSE 8080
ENV STEPGATE_LISTEN=0.0.0.0:8080 \
    STEPGATE_DATABASE_URL=sqlite:///var/lib/stepgate/stepgate.db \
    STEPGATE_MASTER_KEY_FILE=/var/lib/stepgate/master.key
ENTRYPOINT ["/usr/local/bin/stepgate", "serve"]

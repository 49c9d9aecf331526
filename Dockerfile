# voicegate container image: a static binary on distroless, run as non-root.
#
#   docker build -t voicegate .
#   docker run -p 8080:8080 -e OPENAI_API_KEY -e VOICEGATE_ADMIN_KEY -v vg:/data voicegate
#
# The store defaults to SQLite in the /data volume; for several instances
# use Redis (docker-compose.yml).

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# Pure Go (modernc.org/sqlite, pion): no cgo, so the binary runs on an image
# without a libc.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/voicegate ./cmd/voicegate \
	&& mkdir -p /out/data/spool

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/voicegate /usr/local/bin/voicegate
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
WORKDIR /data
ENV VOICEGATE_ADDR=:8080 \
	VOICEGATE_STORE=sqlite:/data/voicegate.db \
	VOICEGATE_SPOOL_DIR=/data/spool
EXPOSE 8080
VOLUME ["/data"]
ENTRYPOINT ["/usr/local/bin/voicegate"]
CMD ["serve"]

# The image of the hector-backup CronJob: Hector's binary with a shell,
# for the date in the backup's file name. Build it after Hector's image
# (deploy/docker), with the same tag in both places:
#
#   docker build -t hector-backup:latest -f backup.Dockerfile .
FROM hector:latest AS hector

FROM busybox:1.37
COPY --from=hector /hector /hector
USER 65532:65532
ENTRYPOINT ["/bin/sh", "-c"]

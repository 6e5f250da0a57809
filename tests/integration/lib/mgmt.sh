# shellcheck shell=bash
# mgmt_curl URL [curl args]: curl to a RabbitMQ management URL of the form
# the stack exports (http://user:password@host:port/path). The credentials
# reach curl as a config file on a pipe, never in its argv: any user's `ps`
# shows a process's arguments (scripts/stack's rmq_api does the same).
mgmt_curl() {
    local url=$1 auth=
    shift
    if [[ $url =~ ^(https?://)([^@/]*)@(.*)$ ]]; then
        auth=${BASH_REMATCH[2]}
        url=${BASH_REMATCH[1]}${BASH_REMATCH[3]}
    fi
    if [ -z "$auth" ]; then
        curl "$url" "$@"
        return
    fi
    auth=${auth//\\/\\\\}
    curl -K <(printf 'user = "%s"\n' "${auth//\"/\\\"}") "$url" "$@"
}

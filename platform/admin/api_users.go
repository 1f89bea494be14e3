package admin

// The admin API's users routes: the same operations as `glm users`.

import (
	"net/http"
)

func (a *adminAPI) users() (UserStore, error) {
	if a.o.Users == nil {
		return nil, notFound("this server keeps no console users")
	}
	return a.o.Users, nil
}

func (a *adminAPI) listUsers(w http.ResponseWriter, r *http.Request) error {
	us, err := a.users()
	if err != nil {
		return err
	}
	list, err := us.ListUsers(r.Context(), r.URL.Query().Get("account"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"data": UserViews(list)})
}

func (a *adminAPI) createUser(w http.ResponseWriter, r *http.Request) error {
	us, err := a.users()
	if err != nil {
		return err
	}
	var in struct {
		Email    string `json:"email"`
		Account  string `json:"account"`
		Role     string `json:"role"`
		Password string `json:"password"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	u, err := CreateUser(r.Context(), us, a.o.Accounts, NewUser{Email: in.Email, AccountID: in.Account, Role: in.Role,
		Password: in.Password}, a.now())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, UserView(u))
}

func (a *adminAPI) disableUser(w http.ResponseWriter, r *http.Request) error {
	us, err := a.users()
	if err != nil {
		return err
	}
	u, err := DisableUser(r.Context(), us, r.PathValue("email"), a.now())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, UserView(u))
}

func (a *adminAPI) setUserPassword(w http.ResponseWriter, r *http.Request) error {
	us, err := a.users()
	if err != nil {
		return err
	}
	var in struct {
		Password string `json:"password"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	u, err := ChangePassword(r.Context(), us, r.PathValue("email"), in.Password, "", a.now())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, UserView(u))
}
